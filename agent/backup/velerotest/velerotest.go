// Package velerotest runs the real thing for tests of Seed's backups: the
// Docker provider's versitygw store, as seed up makes it, and Velero's
// server, run on the host as Velero's own ServiceAccount (through
// impersonation) so that the RBAC Seed installs is what it runs with.
package velerotest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/registry"
)

// RequireEnv returns the environment variable, skipping the test without
// it unless CI=true, where a missing prerequisite is a failure.
func RequireEnv(t *testing.T, name, how string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s is not set: %s", name, how)
		}
		t.Skipf("%s is not set (%s; CI=true makes this a failure)", name, how)
	}
	return v
}

// Store is a running backup store of the Docker provider.
type Store struct {
	providers.BackupStore
	// Provider made it, for a cluster of its own named Cluster, and keeps
	// its data under Dir.
	Provider providers.Provider
	Cluster  string
	Dir      string
}

// StartStore starts the Docker provider's store, as seed up does (its
// data under $XDG_DATA_HOME, which it points at a temporary directory),
// for a cluster network of its own, until the test ends. It needs
// SEED_BACKUP_STORE_IMAGE and a Docker engine.
func StartStore(t *testing.T, ctx context.Context) *Store {
	t.Helper()
	// The provider runs the store from the image this names.
	RequireEnv(t, "SEED_BACKUP_STORE_IMAGE", "hack/build-versitygw.sh builds it")
	cluster := fmt.Sprintf("seedvelero-%d", time.Now().UnixNano()%1_000_000)
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	spec, err := v1alpha1.Load(fmt.Appendf(nil, "apiVersion: %s\nkind: Cluster\nmetadata: {name: %s}\nspec: {provider: {docker: {}}}\n",
		v1alpha1.APIVersion, cluster), v1alpha1.ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := registry.New(ctx, spec, registry.Env{OnHost: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.EnsureInfrastructure(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and the store needs Docker: %v", err)
		}
		t.Skipf("no Docker engine (set CI=true to make this a failure): %v", err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = p.DestroyInfrastructure(c)
		_ = p.DeleteBackupStore(c)
	})
	bs, err := p.EnsureBackupStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &Store{BackupStore: bs, Provider: p, Cluster: cluster, Dir: filepath.Join(data, "seed", "backups", cluster)}
}

// Stop stops the store's container, as `docker stop` does, through the
// engine's socket; the provider's EnsureBackupStore starts it again.
func (s *Store) Stop(t *testing.T, ctx context.Context) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", "/var/run/docker.sock")
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/containers/"+s.Cluster+"-backups/stop", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified {
		t.Fatalf("stopping the store: %s", resp.Status)
	}
}

// serverLock is held by the one Velero server of this host's tests: its
// controller manager serves metrics on :8080, which no flag moves, so two
// at once (two packages' tests run in parallel) kill the second.
var serverLock = filepath.Join(os.TempDir(), "seed-velero-server.lock")

// StartServer runs `velero server` from binDir (hack/build-velero.sh
// --bin-dir) against the API server kubeconfig names, as Velero's
// ServiceAccount, with the plugin from binDir and the store's credentials
// (an AWS shared-credentials file), until the test ends. The store is
// checked every 2s and synced every 10s, so that tests wait seconds, not
// minutes. It waits (until ctx ends) for any other test's server to stop
// and :8080 to be free. Its last log lines go into the output of a failed
// test.
func StartServer(t *testing.T, ctx context.Context, kubeconfig, binDir string, creds []byte) {
	t.Helper()
	lock, err := os.OpenFile(serverLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // closing releases the lock, after the server is stopped
	for {
		// A server not started here may hold the port without the lock.
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if l, err := net.Listen("tcp", ":8080"); err == nil {
				l.Close()
				break
			}
			_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for another Velero server to stop and free :8080: %v", ctx.Err())
		case <-time.After(time.Second):
		}
	}
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(binDir, "velero-plugin-for-aws"), filepath.Join(plugins, "velero-plugin-for-aws")); err != nil {
		t.Fatal(err)
	}
	kc, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// Impersonate the ServiceAccount the install binds.
	asVelero := strings.Replace(string(kc), "contexts:\n",
		"    as: system:serviceaccount:velero:velero\n    as-groups:\n    - system:serviceaccounts\n    - system:serviceaccounts:velero\n    - system:authenticated\ncontexts:\n", 1)
	if asVelero == string(kc) {
		t.Fatal("cannot add impersonation to the test environment's kubeconfig")
	}
	veleroKubeconfig := filepath.Join(dir, "kubeconfig")
	credsFile := filepath.Join(dir, "cloud")
	if err := os.WriteFile(veleroKubeconfig, []byte(asVelero), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "velero"), "server", "--kubeconfig", veleroKubeconfig, "--namespace", "velero",
		"--plugin-dir", plugins, "--features=", "--uploader-type=kopia",
		"--default-backup-storage-location", manifests.VeleroLocation,
		"--store-validation-frequency", "2s", "--backup-sync-period", "10s",
		"--metrics-address", "127.0.0.1:"+freePort(t), "--profiler-address", "127.0.0.1:"+freePort(t))
	cmd.Env = append(os.Environ(), "VELERO_NAMESPACE=velero", "AWS_SHARED_CREDENTIALS_FILE="+credsFile,
		"TMPDIR="+scratch, "VELERO_SCRATCH_DIR="+scratch)
	log, err := os.Create(filepath.Join(dir, "velero.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			if b, err := os.ReadFile(log.Name()); err == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("velero server, last lines:\n%s", strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
		log.Close()
	})
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
