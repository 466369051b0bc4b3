package testenv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// startTimeout bounds one attempt at starting etcd and the apiserver;
	// a warm start takes a few seconds.
	startTimeout = 60 * time.Second
	// startAttempts covers losing a port to another process between
	// choosing it and the child binding it.
	startAttempts = 3
	pollInterval  = 100 * time.Millisecond
	// serviceAccountIssuer is the issuer a kubeadm cluster uses.
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
)

// Env is a running etcd and kube-apiserver.
type Env struct {
	// Config reaches the apiserver as an admin (group system:masters).
	Config *rest.Config
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// KubeconfigPath is a kubeconfig file for Config, for programs run as
	// child processes (kubectl, the agent binary).
	KubeconfigPath string
	// EtcdURL is etcd's client URL (plain HTTP on loopback), for tests of
	// what the apiserver stores or of etcd snapshots.
	EtcdURL string

	dir       string
	etcd      *process
	apiserver *process
	stopOnce  sync.Once
	mu        sync.Mutex
	// extra are the processes StartProcess ran.
	extra []*process
}

// Start runs a fresh etcd and kube-apiserver for t and stops them when t
// ends. ctx bounds start-up only. When the binaries are missing, t is
// skipped, or failed if the environment variable CI is "true", with the
// command that builds them.
func Start(ctx context.Context, t testing.TB) *Env {
	t.Helper()
	env, err := start(ctx)
	if err != nil {
		handleStartError(t, err)
	}
	t.Cleanup(env.Stop)
	return env
}

// handleStartError skips or fails t, as Start documents.
func handleStartError(t testing.TB, err error) {
	t.Helper()
	if isMissingBinary(err) && os.Getenv("CI") != "true" {
		t.Skipf("testenv: %v", err)
	}
	t.Fatalf("testenv: %v", err)
}

// start runs the processes, retrying when a child dies at start-up, which
// is nearly always a port someone else took in the meantime.
func start(ctx context.Context) (*Env, error) {
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		env, err := startOnce(ctx, bins)
		if err == nil || !errors.Is(err, errExited) || attempt == startAttempts {
			return env, err
		}
	}
}

func startOnce(ctx context.Context, bins binaries) (_ *Env, err error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	apiPort := ports[2]

	dir, err := newTempDir()
	if err != nil {
		return nil, err
	}
	env := &Env{dir: dir, EtcdURL: etcdURL}
	defer func() {
		if err != nil {
			env.Stop()
		}
	}()

	creds, err := writePKI(dir)
	if err != nil {
		return nil, fmt.Errorf("writing certificates: %w", err)
	}

	env.etcd, err = startProcess("etcd", dir, bins.etcd,
		"--name=testenv",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=testenv="+peerURL,
		// The data is thrown away after the test; fsync only costs time.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	// The apiserver's storage client retries until etcd listens, so both
	// start together rather than one after the other.
	env.apiserver, err = startProcess("kube-apiserver", dir, bins.apiserver,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+filepath.Join(dir, "apiserver"),
		"--tls-cert-file="+creds.servingCertFile,
		"--tls-private-key-file="+creds.servingKeyFile,
		"--client-ca-file="+creds.caFile,
		"--service-account-issuer="+serviceAccountIssuer,
		"--service-account-key-file="+creds.saKeyFile,
		"--service-account-signing-key-file="+creds.saKeyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		// As in a kubeadm cluster, so RBAC tests mean what they say.
		"--authorization-mode=Node,RBAC",
		// No controller-manager runs to create each namespace's default
		// ServiceAccount, which this plugin would demand of every Pod.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
	)
	if err != nil {
		return nil, err
	}

	env.Config = &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(apiPort),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   creds.caCert,
			CertData: creds.clientCert,
			KeyData:  creds.clientKey,
		},
		// Client-side throttling only slows tests down.
		QPS:   1000,
		Burst: 2000,
	}
	if env.Client, err = kubernetes.NewForConfig(env.Config); err != nil {
		return nil, fmt.Errorf("building a client: %w", err)
	}
	if err := env.waitReady(ctx); err != nil {
		return nil, err
	}
	env.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(env.KubeconfigPath, kubeconfig(env.Config), 0o600); err != nil {
		return nil, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return env, nil
}

// waitReady polls /readyz, which passes only once etcd is reachable and the
// bootstrap RBAC roles and priority levels are in place.
func (e *Env) waitReady(ctx context.Context) error {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var last error
	for {
		for _, p := range []*process{e.etcd, e.apiserver} {
			if err := p.check(); err != nil {
				return err
			}
		}
		body, err := e.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for kube-apiserver to be ready: %w (last error: %w); last lines of %s:\n%s",
				ctx.Err(), last, e.apiserver.logPath, e.apiserver.logTail(20))
		case <-ticker.C:
		}
	}
}

// Stop kills the apiserver and etcd and removes their files. It is safe to
// call more than once; Start registers it with t.Cleanup.
func (e *Env) Stop() {
	e.stopOnce.Do(func() {
		// Clients first, then the apiserver, so it does not log a storm of
		// etcd errors.
		e.mu.Lock()
		procs := append(e.extra, e.apiserver, e.etcd)
		e.mu.Unlock()
		for _, p := range procs {
			if p != nil {
				p.stop()
			}
		}
		_ = os.RemoveAll(e.dir)
	})
}

// ImpersonatingConfig returns a copy of Config that acts as user in groups,
// so a test can check what that identity may do. The apiserver adds
// system:authenticated itself.
func (e *Env) ImpersonatingConfig(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// ServiceAccountConfig returns a copy of Config that acts as the named
// ServiceAccount, with the groups a token of that account would carry.
func (e *Env) ServiceAccountConfig(namespace, name string) *rest.Config {
	return e.ImpersonatingConfig(
		"system:serviceaccount:"+namespace+":"+name,
		"system:serviceaccounts",
		"system:serviceaccounts:"+namespace,
	)
}

// kubeconfig renders cfg as a kubeconfig file. Written by hand because the
// clientcmd package is a large dependency for three lines of YAML.
func kubeconfig(cfg *rest.Config) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: testenv
  context:
    cluster: testenv
    user: admin
current-context: testenv
`, cfg.Host, b64(cfg.CAData), b64(cfg.CertData), b64(cfg.KeyData))
}
