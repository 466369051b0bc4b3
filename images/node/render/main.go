package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/pkg/pki"
	"github.com/seedhq/seed/providers"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	var (
		role       = fs.String("role", "control-plane", "control-plane or worker")
		out        = fs.String("out", "", "directory to lay the machine's files out under (required)")
		caDir      = fs.String("ca-dir", "", "directory with ca.crt and ca.key; created with a new CA when they are missing (required)")
		cluster    = fs.String("cluster", "smoke", "cluster name")
		version    = fs.String("version", v1alpha1.DefaultKubernetesVersion, "Kubernetes version")
		endpoint   = fs.String("endpoint", "", "control-plane endpoint host:port (required)")
		machine    = fs.String("machine", "", "machine (Node) name (required)")
		pool       = fs.String("pool", "", "pool name, set as the seed.dev/pool label")
		taints     = fs.String("taints", "", "comma-separated key[=value]:Effect taints")
		sans       = fs.String("sans", "", "comma-separated extra API server certificate names")
		tokenFile  = fs.String("token-file", "", "file holding the join token (worker)")
		providerID = fs.String("provider-id", "", "written to the provider-id file when set")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *caDir == "" || *endpoint == "" || *machine == "" {
		return errors.New("--out, --ca-dir, --endpoint and --machine are required")
	}

	caCert, caKey, err := loadOrCreateCA(*caDir, *cluster)
	if err != nil {
		return err
	}
	c := bootstrap.Cluster{
		Name: *cluster, KubernetesVersion: *version, ControlPlaneEndpoint: *endpoint,
		CertSANs: split(*sans), CACert: caCert, CAKey: caKey,
	}
	m := bootstrap.Machine{Name: *machine, KubernetesVersion: *version}
	if *pool != "" {
		m.Labels = map[string]string{providers.LabelPool: *pool}
	}
	for _, t := range split(*taints) {
		kv, effect, ok := strings.Cut(t, ":")
		if !ok {
			return fmt.Errorf("taint %q is not key[=value]:Effect", t)
		}
		k, v, _ := strings.Cut(kv, "=")
		m.Taints = append(m.Taints, v1alpha1.Taint{Key: k, Value: v, Effect: effect})
	}

	var b providers.Bootstrap
	switch *role {
	case "control-plane":
		b, err = bootstrap.ControlPlane(c, m)
	case "worker":
		token, rerr := os.ReadFile(*tokenFile)
		if rerr != nil {
			return fmt.Errorf("reading the join token: %w", rerr)
		}
		hash, herr := pki.CACertHash(caCert)
		if herr != nil {
			return herr
		}
		b, err = bootstrap.Join(c, m, strings.TrimSpace(string(token)), []string{hash})
	default:
		return fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		return err
	}

	files := append(b.Files, providers.File{Path: bootstrap.ScriptPath, Mode: 0o700, Content: []byte(b.Script)})
	if *providerID != "" {
		files = append(files, providers.File{Path: bootstrap.ProviderIDPath, Mode: 0o644, Content: []byte(*providerID + "\n")})
	}
	for _, f := range files {
		path := filepath.Join(*out, f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, f.Content, os.FileMode(f.Mode)); err != nil {
			return err
		}
		// WriteFile keeps the mode of a file that exists already.
		if err := os.Chmod(path, os.FileMode(f.Mode)); err != nil {
			return err
		}
	}
	return nil
}

func loadOrCreateCA(dir, cluster string) (cert, key []byte, err error) {
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	cert, err1 := os.ReadFile(certPath)
	key, err2 := os.ReadFile(keyPath)
	if err1 == nil && err2 == nil {
		return cert, key, nil
	}
	cert, key, err = pki.NewCA(cluster+"-ca", 10*365*24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certPath, cert, 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, os.WriteFile(keyPath, key, 0o600)
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
