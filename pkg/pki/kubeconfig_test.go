package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestAdminKubeconfig(t *testing.T) {
	caCert, caKey := ca(t)
	cert, key, err := SignClient(caCert, caKey, "kubernetes-admin", []string{"kubeadm:cluster-admins"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cluster, server, wantServer, err string
		missing                                bool
	}{
		{name: "host:port", cluster: "demo", server: "127.0.0.1:6443", wantServer: "https://127.0.0.1:6443"},
		{name: "URL", cluster: "demo", server: "https://demo-control-plane:6443", wantServer: "https://demo-control-plane:6443"},
		{name: "no cluster", server: "127.0.0.1:6443", err: "cluster name is empty"},
		{name: "no server", cluster: "demo", err: "server is empty"},
		{name: "no key", cluster: "demo", server: "127.0.0.1:6443", missing: true, err: "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := key
			if tc.missing {
				k = nil
			}
			raw, err := AdminKubeconfig(tc.cluster, tc.server, caCert, cert, k)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := clientcmd.Load(raw)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.CurrentContext != "seed-demo" {
				t.Fatalf("current context = %q", cfg.CurrentContext)
			}
			c := cfg.Contexts["seed-demo"]
			if c == nil || c.Cluster != "seed-demo" || c.AuthInfo != "seed-demo-admin" {
				t.Fatalf("context = %+v", c)
			}
			cl, u := cfg.Clusters["seed-demo"], cfg.AuthInfos["seed-demo-admin"]
			if cl.Server != tc.wantServer || string(cl.CertificateAuthorityData) != string(caCert) ||
				string(u.ClientCertificateData) != string(cert) || string(u.ClientKeyData) != string(key) {
				t.Fatalf("cluster = %+v, user = %+v", cl, u)
			}
		})
	}
}

// The kubeconfig works: a client built from it completes mutual TLS with a
// server whose certificate the CA signed, and presents the admin identity.
func TestAdminKubeconfigConnects(t *testing.T) {
	caCert, caKey := ca(t)
	clientCert, clientKey, err := SignClient(caCert, caKey, "kubernetes-admin", []string{"kubeadm:cluster-admins"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caParsed, _ := ParseCertificate(caCert)
	caSigner, err := parsePrivateKey(caKey)
	if err != nil {
		t.Fatal(err)
	}
	serverKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}, caParsed, serverKey.Public(), caSigner)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caParsed)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := r.TLS.PeerCertificates[0]
		_, _ = io.WriteString(w, peer.Subject.CommonName+"/"+strings.Join(peer.Subject.Organization, ","))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: serverKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	srv.StartTLS()
	defer srv.Close()

	raw, err := AdminKubeconfig("demo", strings.TrimPrefix(srv.URL, "https://"), caCert, clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	restCfg, err := clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatalf("mutual TLS with the kubeconfig's credentials: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "kubernetes-admin/kubeadm:cluster-admins" {
		t.Fatalf("server saw %q", body)
	}
}
