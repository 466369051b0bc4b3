package pki

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ContextName is the kubeconfig context (and cluster entry) of a Seed
// cluster: "seed-<cluster>", like kind's "kind-<cluster>", so that it
// merges into a user's kubeconfig without clashing with other tools.
func ContextName(clusterName string) string { return "seed-" + clusterName }

// UserName is the kubeconfig user entry holding a cluster's admin
// credentials: "seed-<cluster>-admin".
func UserName(clusterName string) string { return ContextName(clusterName) + "-admin" }

// AdminKubeconfig returns a kubeconfig for server with the certificates
// embedded: one cluster and one context named ContextName(clusterName), one
// user named UserName(clusterName), and that context current. server is a
// URL or a host:port, which means https://host:port.
func AdminKubeconfig(clusterName, server string, caCertPEM, clientCertPEM, clientKeyPEM []byte) ([]byte, error) {
	switch {
	case clusterName == "":
		return nil, errors.New("writing a kubeconfig: the cluster name is empty")
	case server == "":
		return nil, fmt.Errorf("writing the kubeconfig of cluster %s: the server is empty", clusterName)
	case len(caCertPEM) == 0 || len(clientCertPEM) == 0 || len(clientKeyPEM) == 0:
		return nil, fmt.Errorf("writing the kubeconfig of cluster %s: a certificate or key is missing", clusterName)
	}
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	name, user := ContextName(clusterName), UserName(clusterName)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   server,
		CertificateAuthorityData: caCertPEM,
	}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{
		ClientCertificateData: clientCertPEM,
		ClientKeyData:         clientKeyPEM,
	}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user}
	cfg.CurrentContext = name
	if err := clientcmd.Validate(*cfg); err != nil {
		return nil, fmt.Errorf("writing the kubeconfig of cluster %s: %w", clusterName, err)
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("writing the kubeconfig of cluster %s: %w", clusterName, err)
	}
	return out, nil
}
