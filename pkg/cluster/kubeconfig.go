package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/seedhq/seed/pkg/pki"
	"github.com/seedhq/seed/providers"
)

// DefaultKubeconfigPath is $KUBECONFIG's first entry or ~/.kube/config.
func DefaultKubeconfigPath() string {
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return filepath.SplitList(env)[0]
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".kube", "config")
}

// MergeKubeconfig adds (or replaces) the cluster's context, cluster and user
// in the kubeconfig file at path, makes it the current context, and keeps
// the file readable by its owner alone.
func MergeKubeconfig(path string, admin []byte) error {
	in, err := clientcmd.Load(admin)
	if err != nil {
		return fmt.Errorf("parsing the cluster's kubeconfig: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	if _, err := os.Stat(path); err == nil {
		if cfg, err = clientcmd.LoadFromFile(path); err != nil {
			return fmt.Errorf("reading kubeconfig %s: %w", path, err)
		}
	}
	for k, v := range in.Clusters {
		cfg.Clusters[k] = v
	}
	for k, v := range in.AuthInfos {
		cfg.AuthInfos[k] = v
	}
	for k, v := range in.Contexts {
		cfg.Contexts[k] = v
	}
	cfg.CurrentContext = in.CurrentContext
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("restricting kubeconfig %s to its owner: %w", path, err)
	}
	return nil
}

// RemoveFromKubeconfig deletes the cluster's context, cluster and user.
func RemoveFromKubeconfig(path, clusterName string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	name := pki.ContextName(clusterName)
	ctx, ok := cfg.Contexts[name]
	if !ok {
		return nil
	}
	delete(cfg.Clusters, ctx.Cluster)
	delete(cfg.AuthInfos, ctx.AuthInfo)
	delete(cfg.Contexts, name)
	if cfg.CurrentContext == name {
		cfg.CurrentContext = ""
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// contextConfig returns a client config for the cluster's context in the
// kubeconfig at path, and its raw form, or ok=false when there is none.
func contextConfig(path, clusterName string) (cfg *rest.Config, raw []byte, ok bool, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, false, nil
	}
	all, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, nil, false, fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	name := pki.ContextName(clusterName)
	if _, found := all.Contexts[name]; !found {
		return nil, nil, false, nil
	}
	one := all.DeepCopy()
	one.CurrentContext = name
	if err := clientcmdapi.MinifyConfig(one); err != nil {
		return nil, nil, false, fmt.Errorf("extracting context %s: %w", name, err)
	}
	raw, err = clientcmd.Write(*one)
	if err != nil {
		return nil, nil, false, err
	}
	cfg, err = clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil {
		return nil, nil, false, fmt.Errorf("using context %s: %w", name, err)
	}
	return cfg, raw, true, nil
}

// Kubeconfig returns the cluster's admin kubeconfig: its context in the file
// at path, or the credentials on its control-plane machine.
func Kubeconfig(ctx context.Context, p providers.Provider, cluster, path string) ([]byte, error) {
	_, raw, ok, err := contextConfig(path, cluster)
	if err != nil || ok {
		return raw, err
	}
	infra, err := p.EnsureInfrastructure(ctx)
	if err != nil {
		return nil, err
	}
	machines, err := p.ListMachines(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range machines {
		if m.Role == providers.RoleControlPlane {
			return ReadAdminKubeconfig(ctx, p, cluster, m.Name, infra.ExternalEndpoint)
		}
	}
	return nil, fmt.Errorf("cluster %s has no control-plane machine: create it with `seed up`", cluster)
}
