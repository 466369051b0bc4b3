package backup

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/testenv"
	"github.com/seedhq/seed/providers/registry"
)

// requireEnv returns the environment variable, skipping the test without
// it unless CI=true, where a missing prerequisite is a failure.
func requireEnv(t *testing.T, name, how string) string {
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

// TestJudgeRealVeleroBackups runs the real thing: Velero v1.18.3's server
// (as Velero's own ServiceAccount, through impersonation, so Seed's RBAC is
// what it runs with) against a real kube-apiserver and the Docker
// provider's versitygw store, with the install Installer applies. A backup
// judged good is Completed with every item; with the store stopped the
// location goes Unavailable, and a backup then taken is never judged good;
// with the store back, a new backup is.
func TestJudgeRealVeleroBackups(t *testing.T) {
	veleroBin := requireEnv(t, "SEED_VELERO_BIN_DIR", "hack/build-velero.sh builds it")
	// The provider runs the store from the image this names.
	requireEnv(t, "SEED_BACKUP_STORE_IMAGE", "hack/build-versitygw.sh builds it")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// The store, as seed up makes it (its directory under $XDG_DATA_HOME),
	// for a cluster network of its own.
	cluster := fmt.Sprintf("seedvelero-%d", time.Now().UnixNano()%1_000_000)
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	storeDir := filepath.Join(data, "seed", "backups", cluster)
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
	store, err := p.EnsureBackupStore(ctx)
	if err != nil {
		t.Fatal(err)
	}

	env := testenv.Start(ctx, t)
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	inst := &Installer{Dynamic: dyn, Core: env.Client}
	creds := SharedCredentials(store.AccessKeyID, store.SecretAccessKey)
	ensure := func() Health {
		t.Helper()
		h, err := inst.Ensure(ctx, Store{URL: store.Endpoint, Bucket: store.Bucket, Region: store.Region, Credentials: creds})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	await(t, ctx, "the install", func() (bool, string) { h := ensure(); return h.Installed, h.Waiting })

	startVelero(t, ctx, env, veleroBin, creds)
	location := func() string { return ensure().LocationPhase }
	await(t, ctx, "the location to be Available", func() (bool, string) { ph := location(); return ph == "Available", ph })

	ns := "drill"
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "data"}, Data: map[string]string{"nonce": "42"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	judge := func(name string) Verdict {
		t.Helper()
		b, err := dyn.Resource(BackupGVR).Namespace("velero").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := ensure()
		return Judge(ObservedFrom(name, b, h.LocationPhase, h.LocationMessage), time.Now(), 30*time.Minute)
	}
	backup := func(name string) Verdict {
		t.Helper()
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "velero.io/v1", "kind": "Backup",
			"metadata": map[string]any{"name": name, "namespace": "velero"},
			"spec": map[string]any{"includedNamespaces": []any{ns}, "snapshotVolumes": false,
				"storageLocation": manifests.VeleroLocation, "ttl": "1h0m0s"},
		}}
		if _, err := dyn.Resource(BackupGVR).Namespace("velero").Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var v Verdict
		await(t, ctx, "a verdict on "+name, func() (bool, string) { v = judge(name); return v.Good || v.Final, v.Message })
		return v
	}

	start := time.Now()
	if v := backup("seed-test-1"); !v.Good {
		t.Fatalf("first backup: %+v, want good", v)
	}
	t.Logf("Figure: a backup of one namespace, created to judged good, took %s", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(storeDir, "data", store.Bucket, manifests.VeleroPrefix, "backups", "seed-test-1", "seed-test-1.tar.gz")); err != nil {
		t.Errorf("the backup's tarball is not in the store's directory under the prefix: %v", err)
	}

	// The store stops: Velero finds the location Unavailable, and a backup
	// taken now is refused, never judged good.
	stopStore(t, ctx, cluster)
	await(t, ctx, "the location to be Unavailable", func() (bool, string) { ph := location(); return ph == "Unavailable", ph })
	v := backup("seed-test-2")
	if v.Good || !v.Final || (v.Reason != ReasonBackupFailedValidation && v.Reason != ReasonBackupFailed) {
		t.Fatalf("backup with the store stopped: %+v, want FailedValidation or Failed", v)
	}
	t.Logf("With the store stopped: %s", v.Message)

	// The store is back (what seed up or the agent does): a new backup is good.
	if store, err = p.EnsureBackupStore(ctx); err != nil {
		t.Fatal(err)
	}
	await(t, ctx, "the location to be Available again", func() (bool, string) { ph := location(); return ph == "Available", ph })
	if v := backup("seed-test-3"); !v.Good {
		t.Fatalf("backup after the store came back: %+v, want good", v)
	}
}

// await polls cond until it holds, failing after the context's deadline;
// the description of what it last saw goes into the failure.
func await(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: last %q", what, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// startVelero runs `velero server` as Velero's ServiceAccount, with the
// plugin from the bin dir and the store's credentials, until the test ends.
func startVelero(t *testing.T, ctx context.Context, env *testenv.Env, bin string, creds []byte) {
	t.Helper()
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(bin, "velero-plugin-for-aws"), filepath.Join(plugins, "velero-plugin-for-aws")); err != nil {
		t.Fatal(err)
	}
	kc, err := os.ReadFile(env.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	// Impersonate the ServiceAccount the install binds.
	asVelero := strings.Replace(string(kc), "contexts:\n",
		"    as: system:serviceaccount:velero:velero\n    as-groups:\n    - system:serviceaccounts\n    - system:serviceaccounts:velero\n    - system:authenticated\ncontexts:\n", 1)
	if asVelero == string(kc) {
		t.Fatal("cannot add impersonation to the test environment's kubeconfig")
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	credsFile := filepath.Join(dir, "cloud")
	if err := os.WriteFile(kubeconfig, []byte(asVelero), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "velero"), "server", "--kubeconfig", kubeconfig, "--namespace", "velero",
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

// stopStore stops the store's container, as `docker stop` does, through
// the engine's socket.
func stopStore(t *testing.T, ctx context.Context, cluster string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", "/var/run/docker.sock")
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/containers/"+cluster+"-backups/stop", nil)
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
