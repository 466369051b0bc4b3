package controller

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/seedhq/seed/agent/backup"
	"github.com/seedhq/seed/agent/backup/velerotest"
	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// gauge reads one gauge of reg by name; ok is false when it is absent.
func gauge(t *testing.T, reg *prometheus.Registry, name string) (v float64, ok bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// clearVelero deletes every Backup in Velero's namespace and the agent's
// Schedule. Velero's objects are cluster-wide, and tests before this one
// (the backup gate's) leave Backups that would count as the last good one.
func clearVelero(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	c := context.Background()
	if err := dyn.Resource(backup.BackupGVR).Namespace("velero").DeleteCollection(c, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := dyn.Resource(backup.ScheduleGVR).Namespace("velero").Delete(c, backup.ScheduleName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// scheduledSpec is backupSpec with spec.backup.schedule set to cron.
func scheduledSpec(t *testing.T, cron string, store *v1alpha1.BackupStoreSpec) *v1alpha1.Cluster {
	t.Helper()
	c := backupSpec(t, store)
	c.Spec.Backup.Schedule = cron
	return c
}

// Against a real kube-apiserver, with the agent's own RBAC (no Velero
// server runs: the test writes what Velero would): the agent keeps one
// Schedule for spec.backup.schedule, follows a change and a removal,
// reports Velero's account of it, and reports the newest good Backup in
// status and in seed_backup_last_success_timestamp_seconds.
func TestAgentKeepsVelerosScheduleAndReportsTheLastGoodBackup(t *testing.T) {
	h := newHarness(t, specYAML(0))
	h.provider.SetCapabilities(providers.Capabilities{KeepsBackupStore: true})
	agentDyn, err := dynamic.NewForConfig(h.env.ServiceAccountConfig(h.ns, "seed-agent"))
	if err != nil {
		t.Fatal(err)
	}
	adminDyn, err := dynamic.NewForConfig(h.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r := h.newReconciler("agent", func(o *Options) { o.Dynamic = agentDyn; o.Metrics = NewMetrics(reg) })
	ctx := t.Context()
	schedules := adminDyn.Resource(backup.ScheduleGVR).Namespace("velero")
	backups := adminDyn.Resource(backup.BackupGVR).Namespace("velero")
	clearVelero(t, adminDyn)
	t.Cleanup(func() { clearVelero(t, adminDyn) })
	pass := func(c *v1alpha1.Cluster) *v1alpha1.BackupStatus {
		t.Helper()
		st, errs := backupsPass(t, r, h, c)
		if len(errs) > 0 {
			t.Fatalf("backups phase: %v", errs)
		}
		return st
	}
	cron := func() string {
		t.Helper()
		s, err := schedules.Get(ctx, backup.ScheduleName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v, _, _ := unstructured.NestedString(s.Object, "spec", "schedule")
		return v
	}

	var st *v1alpha1.BackupStatus
	eventually(t, time.Minute, "Velero installed with a Schedule", func() bool {
		st = pass(scheduledSpec(t, "0 3 * * *", nil))
		return st.Installed && st.Schedule != nil
	})
	if got := cron(); got != "0 3 * * *" || st.Schedule.Cron != "0 3 * * *" || st.Schedule.Name != backup.ScheduleName {
		t.Errorf("Schedule %q, status %+v; want 0 3 * * *", got, st.Schedule)
	}
	if v, _ := gauge(t, reg, "seed_backup_scheduled"); v != 1 {
		t.Errorf("seed_backup_scheduled = %v with a schedule set, want 1", v)
	}
	if v, ok := gauge(t, reg, "seed_backup_last_success_timestamp_seconds"); !ok || v != 0 || st.LastSuccessful != nil {
		t.Errorf("before any backup: gauge %v (present %v), status %+v; want 0 and none", v, ok, st.LastSuccessful)
	}

	// What Velero writes: the Schedule's state, and Backups, good and not.
	s, err := schedules.Get(ctx, backup.ScheduleName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(s.Object, "Enabled", "status", "phase")
	_ = unstructured.SetNestedField(s.Object, "2026-12-03T03:00:00Z", "status", "lastBackup")
	if _, err := schedules.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	completed := time.Now().Add(-90 * time.Minute).UTC().Truncate(time.Second)
	for name, status := range map[string]map[string]any{
		"seed-scheduled-good": {"phase": "Completed", "completionTimestamp": completed.Format(time.RFC3339),
			"progress": map[string]any{"itemsBackedUp": int64(12), "totalItems": int64(12)}},
		"seed-scheduled-older": {"phase": "Completed", "completionTimestamp": completed.Add(-24 * time.Hour).Format(time.RFC3339),
			"progress": map[string]any{"itemsBackedUp": int64(11), "totalItems": int64(11)}},
		"seed-scheduled-partial": {"phase": "PartiallyFailed", "errors": int64(1), "completionTimestamp": completed.Add(time.Hour).Format(time.RFC3339),
			"progress": map[string]any{"itemsBackedUp": int64(10), "totalItems": int64(12)}},
	} {
		b := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "velero.io/v1", "kind": "Backup",
			"metadata": map[string]any{"name": name + "-" + h.ns, "namespace": "velero"},
			"spec":     map[string]any{"storageLocation": "default"},
			"status":   status,
		}}
		if _, err := backups.Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st = pass(scheduledSpec(t, "0 3 * * *", nil))
	if sc := st.Schedule; sc == nil || sc.Phase != "Enabled" || sc.LastBackup == nil || !sc.LastBackup.Equal(time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("status schedule %+v, want Enabled, last backup 2026-12-03T03:00:00Z", sc)
	}
	if ls := st.LastSuccessful; ls == nil || ls.Name != "seed-scheduled-good-"+h.ns || !ls.CompletedAt.Equal(completed) ||
		ls.Age.Duration < 90*time.Minute || ls.Age.Duration > 100*time.Minute {
		t.Errorf("status last successful %+v, want seed-scheduled-good-%s completed %s, about 90m ago", ls, h.ns, completed)
	}
	if v, _ := gauge(t, reg, "seed_backup_last_success_timestamp_seconds"); v != float64(completed.Unix()) {
		t.Errorf("seed_backup_last_success_timestamp_seconds = %v, want %d", v, completed.Unix())
	}

	// A new cron is the same Schedule, updated.
	st = pass(scheduledSpec(t, "30 1 * * *", nil))
	if got := cron(); got != "30 1 * * *" || st.Schedule == nil || st.Schedule.Cron != "30 1 * * *" {
		t.Errorf("after the cron changed: Schedule %q, status %+v", got, st.Schedule)
	}

	// No schedule: the Schedule goes, its backups stay and still count.
	st = pass(scheduledSpec(t, "", nil))
	if _, err := schedules.Get(ctx, backup.ScheduleName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Schedule after spec.backup.schedule was removed: %v, want NotFound", err)
	}
	if st.Schedule != nil || st.LastSuccessful == nil {
		t.Errorf("status without a schedule: schedule %+v, last successful %+v", st.Schedule, st.LastSuccessful)
	}
	if v, _ := gauge(t, reg, "seed_backup_scheduled"); v != 0 {
		t.Errorf("seed_backup_scheduled = %v without a schedule, want 0", v)
	}
	if v, _ := gauge(t, reg, "seed_backup_last_success_timestamp_seconds"); v != float64(completed.Unix()) {
		t.Errorf("seed_backup_last_success_timestamp_seconds = %v without a schedule, want %d still", v, completed.Unix())
	}

	// Backups off: nothing is read, and the gauges say none.
	off := scheduledSpec(t, "0 3 * * *", nil)
	off.Spec.Backup.Enabled = false
	if st := pass(off); st != nil {
		t.Errorf("status with backups off: %+v", st)
	}
	for _, name := range []string{"seed_backup_scheduled", "seed_backup_last_success_timestamp_seconds"} {
		if v, _ := gauge(t, reg, name); v != 0 {
			t.Errorf("%s = %v with backups off, want 0", name, v)
		}
	}
}

// The real thing, end to end but for the cluster: Velero v1.18.3's server
// (as its own ServiceAccount) and the Docker provider's versitygw store,
// named in the spec with the user's keys, and a schedule of every minute.
// Velero's schedule controller starts a backup of the whole cluster, the
// agent judges it good and reports it in status and in the gauge.
func TestAgentReportsTheScheduledBackupsOfRealVelero(t *testing.T) {
	veleroBin := velerotest.RequireEnv(t, "SEED_VELERO_BIN_DIR", "hack/build-velero.sh --bin-dir builds it")
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	store := velerotest.StartStore(t, ctx)

	h := newHarness(t, specYAML(0))
	agentDyn, err := dynamic.NewForConfig(h.env.ServiceAccountConfig(h.ns, "seed-agent"))
	if err != nil {
		t.Fatal(err)
	}
	adminDyn, err := dynamic.NewForConfig(h.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	creds := backup.SharedCredentials(store.AccessKeyID, store.SecretAccessKey)
	if _, err := h.admin.CoreV1().Secrets(h.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "store-keys"}, Data: map[string][]byte{"cloud": creds},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Registered before Velero starts, so run after it stops.
	clearVelero(t, adminDyn)
	t.Cleanup(func() { clearVelero(t, adminDyn) })
	reg := prometheus.NewRegistry()
	snaps := &snapshots{}
	r := h.newReconciler("agent", func(o *Options) { o.Dynamic, o.Metrics, o.EtcdSnapshots = agentDyn, NewMetrics(reg), snaps })
	spec := scheduledSpec(t, "* * * * *", &v1alpha1.BackupStoreSpec{
		Endpoint: store.Endpoint, Bucket: store.Bucket, Region: store.Region, CredentialsSecret: "store-keys"})
	var st *v1alpha1.BackupStatus
	await := func(what string, cond func() bool) {
		t.Helper()
		for {
			var errs []error
			if st, errs = backupsPass(t, r, h, spec); len(errs) > 0 {
				t.Fatalf("backups phase: %v", errs)
			}
			if cond() {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("waiting for %s: last status %+v, schedule %+v", what, st, st.Schedule)
			case <-time.After(time.Second):
			}
		}
	}
	await("the install", func() bool { return st.Installed })
	velerotest.StartServer(t, ctx, h.env.KubeconfigPath, veleroBin, creds)
	await("the location to be Available", func() bool { return st.LocationPhase == "Available" })
	start := time.Now()
	await("a good scheduled backup", func() bool {
		return st.LastSuccessful != nil && strings.HasPrefix(st.LastSuccessful.Name, backup.ScheduleName+"-")
	})
	t.Logf("Figure: the first good scheduled backup came %s after the location was Available (Velero looks at schedules every minute)",
		time.Since(start).Round(time.Second))

	last := st.LastSuccessful
	// A scheduled backup gets its etcd snapshot too, once.
	await("the etcd snapshot of the scheduled backup", func() bool { return slices.Contains(snaps.backups(), last.Name) })
	if _, errs := backupsPass(t, r, h, spec); len(errs) > 0 {
		t.Fatal(errs)
	}
	n := 0
	for _, b := range snaps.backups() {
		if b == last.Name {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d etcd snapshots taken for backup %s (all: %v), want one", n, last.Name, snaps.backups())
	}
	if sc := st.Schedule; sc == nil || sc.Phase != "Enabled" || sc.Cron != "* * * * *" || sc.LastBackup == nil || len(sc.ValidationErrors) > 0 {
		t.Errorf("status schedule %+v, want Enabled with a last backup", sc)
	}
	if last.Age.Duration < 0 || last.Age.Duration > 5*time.Minute || last.CompletedAt.IsZero() {
		t.Errorf("last successful %+v: want a completion minutes ago at most", last)
	}
	if v, _ := gauge(t, reg, "seed_backup_last_success_timestamp_seconds"); v != float64(last.CompletedAt.Unix()) {
		t.Errorf("seed_backup_last_success_timestamp_seconds = %v, want %d", v, last.CompletedAt.Unix())
	}
	if v, _ := gauge(t, reg, "seed_backup_scheduled"); v != 1 {
		t.Errorf("seed_backup_scheduled = %v, want 1", v)
	}
	b, err := adminDyn.Resource(backup.BackupGVR).Namespace("velero").Get(ctx, last.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := b.GetLabels(); l["app.kubernetes.io/part-of"] != "seed" || l["velero.io/schedule-name"] != backup.ScheduleName {
		t.Errorf("scheduled backup's labels %v: want Seed's and Velero's schedule name", l)
	}
	if ttl, _, _ := unstructured.NestedString(b.Object, "spec", "ttl"); ttl != backup.ScheduleTTL.String() {
		t.Errorf("scheduled backup's TTL %q, want %s", ttl, backup.ScheduleTTL)
	}
	if _, err := os.Stat(filepath.Join(store.Dir, "data", store.Bucket, manifests.VeleroPrefix, "backups", last.Name, last.Name+".tar.gz")); err != nil {
		t.Errorf("the scheduled backup's tarball is not in the store: %v", err)
	}
}
