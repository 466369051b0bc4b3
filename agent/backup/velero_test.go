package backup

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/seedhq/seed/agent/backup/velerotest"
	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/testenv"
)

// TestJudgeRealVeleroBackups runs the real thing: Velero v1.18.3's server
// (as Velero's own ServiceAccount, through impersonation, so Seed's RBAC is
// what it runs with) against a real kube-apiserver and the Docker
// provider's versitygw store, with the install Installer applies. A backup
// judged good is Completed with every item; with the store stopped the
// location goes Unavailable, and a backup then taken is never judged good;
// with the store back, a new backup is.
func TestJudgeRealVeleroBackups(t *testing.T) {
	veleroBin := velerotest.RequireEnv(t, "SEED_VELERO_BIN_DIR", "hack/build-velero.sh builds it")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	store := velerotest.StartStore(t, ctx)

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

	velerotest.StartServer(t, ctx, env.KubeconfigPath, veleroBin, creds)
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
	if _, err := os.Stat(filepath.Join(store.Dir, "data", store.Bucket, manifests.VeleroPrefix, "backups", "seed-test-1", "seed-test-1.tar.gz")); err != nil {
		t.Errorf("the backup's tarball is not in the store's directory under the prefix: %v", err)
	}

	// The store stops: Velero finds the location Unavailable, and a backup
	// taken now is refused, never judged good.
	store.Stop(t, ctx)
	await(t, ctx, "the location to be Unavailable", func() (bool, string) { ph := location(); return ph == "Unavailable", ph })
	v := backup("seed-test-2")
	if v.Good || !v.Final || (v.Reason != ReasonBackupFailedValidation && v.Reason != ReasonBackupFailed) {
		t.Fatalf("backup with the store stopped: %+v, want FailedValidation or Failed", v)
	}
	t.Logf("With the store stopped: %s", v.Message)

	// The store is back (what seed up or the agent does): a new backup is good.
	if _, err := store.Provider.EnsureBackupStore(ctx); err != nil {
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
