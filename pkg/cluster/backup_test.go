package cluster

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/velero"
)

// fakeVelero is a cluster's API as the seed sees it, with Velero played
// by reactors: every Backup or Restore created gets the status given.
type fakeVelero struct {
	client        *dynamicfake.FakeDynamicClient
	backupStatus  map[string]any
	restoreStatus map[string]any
	out           bytes.Buffer
}

func newFakeVelero(t *testing.T, locationStatus map[string]any, objs ...runtime.Object) *fakeVelero {
	t.Helper()
	if locationStatus != nil {
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
			"metadata": map[string]any{"name": manifests.VeleroLocation, "namespace": manifests.DefaultVeleroNamespace},
			"status":   locationStatus,
		}})
	}
	objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": v1alpha1.SpecConfigMap, "namespace": v1alpha1.DefaultNamespace},
	}})
	f := &fakeVelero{client: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		velero.BackupGVR: "BackupList", velero.RestoreGVR: "RestoreList", velero.LocationGVR: "BackupStorageLocationList",
		configMapGVR: "ConfigMapList",
	}, objs...)}
	// Velero answers at once: what is created is given its final status.
	f.client.PrependReactor("create", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		obj := a.(clienttesting.CreateAction).GetObject().(*unstructured.Unstructured)
		switch a.GetResource().Resource {
		case "backups":
			obj.Object["status"] = f.backupStatus
		case "restores":
			obj.Object["status"] = f.restoreStatus
		}
		return false, nil, nil
	})
	return f
}

func (f *fakeVelero) backups() *Backups {
	return &Backups{Dynamic: f.client, Progress: &f.out, Poll: time.Millisecond}
}

func (f *fakeVelero) creates(resource string) int {
	n := 0
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

var available = map[string]any{"phase": "Available", "lastSyncedTime": "2026-12-03T12:00:00Z"}

func completedAt(ts string) map[string]any {
	return map[string]any{"phase": "Completed", "completionTimestamp": ts,
		"progress": map[string]any{"itemsBackedUp": int64(40), "totalItems": int64(40)}}
}

func backupObj(name string, status map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "velero.io/v1", "kind": "Backup",
		"metadata": map[string]any{"name": name, "namespace": manifests.DefaultVeleroNamespace},
		"status":   status,
	}}
}

func TestTakeBackupSaysWhyItFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now().UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name     string
		location map[string]any
		backup   map[string]any
		wantErr  string
	}{
		{name: "Velero not installed (backups not enabled)", wantErr: "Velero is not installed in the cluster"},
		{name: "the location is Unavailable", location: map[string]any{"phase": "Unavailable", "message": "dial tcp 172.18.0.9:7070: connection refused"},
			wantErr: "is Unavailable: dial tcp 172.18.0.9:7070: connection refused"},
		{name: "the backup partially failed", location: available, backup: map[string]any{"phase": "PartiallyFailed", "errors": int64(2)},
			wantErr: "partially failed with 2 errors"},
		{name: "the backup failed", location: available, backup: map[string]any{"phase": "Failed", "failureReason": "HeadObject: connection refused"},
			wantErr: "failed: HeadObject: connection refused"},
		{name: "a good backup", location: available, backup: completedAt(now)},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeVelero(t, c.location)
			f.backupStatus = c.backup
			res, err := f.backups().Take(ctx, "lab-manual-1")
			if c.wantErr == "" {
				if err != nil || res.Items != 40 || !res.Verdict.Good {
					t.Fatalf("Take = %+v, %v; want a good backup of 40 items\n%s", res, err, f.out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Take error %v, want one saying %q", err, c.wantErr)
			}
		})
	}
}

func TestRestoreTakesTheLatestGoodBackupAndFailsOnPartialFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	backups := []runtime.Object{
		backupObj("old", completedAt("2026-10-01T00:00:00Z")),
		backupObj("newest-but-partial", map[string]any{"phase": "PartiallyFailed", "errors": int64(1), "completionTimestamp": "2026-12-03T11:00:00Z"}),
		backupObj("newer", completedAt("2026-12-02T00:00:00Z")),
	}
	f := newFakeVelero(t, available, backups...)
	f.restoreStatus = map[string]any{"phase": "Completed", "warnings": int64(3), "progress": map[string]any{"itemsRestored": int64(40), "totalItems": int64(40)}}
	res, err := f.backups().Restore(ctx, LatestBackup, "")
	if err != nil || res.Backup != "newer" || res.Warnings != 3 || res.Items != 40 {
		t.Fatalf("Restore latest = %+v, %v; want backup newer restored, 40 items, 3 warnings", res, err)
	}
	if _, err := f.backups().Restore(ctx, "newest-but-partial", ""); err == nil || !strings.Contains(err.Error(), "not restoring backup newest-but-partial, which is not good") {
		t.Errorf("restoring a PartiallyFailed backup: %v", err)
	}
	if _, err := f.backups().Restore(ctx, "nope", ""); err == nil || !strings.Contains(err.Error(), "no backup named nope: Velero knows these") {
		t.Errorf("restoring a backup that does not exist: %v", err)
	}
	f.restoreStatus = map[string]any{"phase": "PartiallyFailed", "errors": int64(1)}
	if _, err := f.backups().Restore(ctx, "old", ""); err == nil || !strings.Contains(err.Error(), "partially failed with 1 errors") {
		t.Errorf("a restore that partially failed: %v", err)
	}
}

func TestLifeboatRestoresOncePerCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f := newFakeVelero(t, available, backupObj("lab-manual-1", completedAt("2026-12-02T00:00:00Z")))
	f.restoreStatus = map[string]any{"phase": "Completed", "progress": map[string]any{"itemsRestored": int64(40), "totalItems": int64(40)}}
	res, err := f.backups().Lifeboat(ctx, LatestBackup)
	if err != nil || res.Name != LifeboatRestoreName("lab-manual-1") || res.Earlier {
		t.Fatalf("first Lifeboat = %+v, %v", res, err)
	}
	spec, err := f.client.Resource(configMapGVR).Namespace(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil || spec.GetAnnotations()[AnnotationRestoredFrom] != "lab-manual-1" {
		t.Fatalf("spec ConfigMap annotations %v, %v", spec.GetAnnotations(), err)
	}
	// A newer backup appears; the cluster was restored already.
	if _, err := f.client.Resource(velero.BackupGVR).Namespace(manifests.DefaultVeleroNamespace).Create(ctx,
		backupObj("lab-manual-2", completedAt("2026-12-03T00:00:00Z")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err = f.backups().Lifeboat(ctx, LatestBackup)
	if err != nil || !res.Earlier || res.Backup != "lab-manual-1" {
		t.Fatalf("second Lifeboat = %+v, %v; want the first restore, followed", res, err)
	}
	if n := f.creates("restores"); n != 1 {
		t.Errorf("%d restores asked for, want 1", n)
	}
	if _, err := f.backups().Lifeboat(ctx, "lab-manual-2"); err == nil || !strings.Contains(err.Error(), "restored from backup lab-manual-1 already") {
		t.Errorf("Lifeboat naming another backup: %v", err)
	}
}

func TestLifeboatWaitsForVeleroToReadTheStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	f := newFakeVelero(t, map[string]any{"phase": "Available"})
	_, err := f.backups().Lifeboat(ctx, LatestBackup)
	if err == nil || !strings.Contains(err.Error(), "waiting for Velero to read the store") || !strings.Contains(f.out.String(), "Velero has not read the store yet") {
		t.Errorf("Lifeboat before the sync: %v\n%s", err, f.out.String())
	}
}
