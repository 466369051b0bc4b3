package velero

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

func restoreFrom(t *testing.T, status string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"backupName": "b1"}}}
	if status != "" {
		var st map[string]any
		if err := utiljson.Unmarshal([]byte(status), &st); err != nil {
			t.Fatal(err)
		}
		u.Object["status"] = st
	}
	return u
}

// Restore statuses as Velero v1.18.3 writes them; PartiallyFailed is the
// one research/backups.md §6.3 saw restore nothing at all.
func TestJudgeRestoreEveryOutcome(t *testing.T) {
	for _, c := range []struct {
		name        string
		status      string
		missing     bool
		good, final bool
		reason      string
		says        string
	}{
		{name: "not created yet", missing: true, reason: ReasonRestoreNotFound, says: "does not exist yet"},
		{name: "new", status: `{}`, reason: ReasonRestoreInProgress, says: "is New (no item counts yet)"},
		{name: "in progress", status: `{"phase":"InProgress","progress":{"itemsRestored":3,"totalItems":9}}`,
			reason: ReasonRestoreInProgress, says: "3 of 9 items restored"},
		{name: "completed with warnings (objects that existed)", status: `{"phase":"Completed","warnings":4,"progress":{"itemsRestored":9,"totalItems":9}}`,
			good: true, reason: ReasonRestoreCompleted, says: "completed: 9 of 9 items restored, 4 warnings"},
		{name: "partially failed", status: `{"phase":"PartiallyFailed","errors":1}`,
			final: true, reason: ReasonRestorePartiallyFailed, says: "partially failed with 1 errors and 0 warnings"},
		{name: "finalizing a partial failure", status: `{"phase":"FinalizingPartiallyFailed","errors":2}`,
			final: true, reason: ReasonRestorePartiallyFailed, says: "is FinalizingPartiallyFailed with 2 errors"},
		{name: "failed", status: `{"phase":"Failed","failureReason":"error downloading backup"}`,
			final: true, reason: ReasonRestoreFailed, says: "failed: error downloading backup"},
		{name: "failed validation", status: `{"phase":"FailedValidation","validationErrors":["backup b1 not found"]}`,
			final: true, reason: ReasonRestoreFailedValidation, says: "failed validation: backup b1 not found"},
		{name: "completed with errors is no success", status: `{"phase":"Completed","errors":1}`,
			final: true, reason: ReasonRestorePartiallyFailed, says: "completed with 1 errors"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var u *unstructured.Unstructured
			if !c.missing {
				u = restoreFrom(t, c.status)
			}
			v := JudgeRestore(RestoreObservedFrom("r1", u))
			if v.Good != c.good || v.Final != c.final || v.Reason != c.reason || !strings.Contains(v.Message, c.says) {
				t.Errorf("JudgeRestore = %+v, want good %t final %t reason %s saying %q", v, c.good, c.final, c.reason, c.says)
			}
		})
	}
}

func TestLatestIsTheLastGoodBackupWhateverItsAge(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	n := func(v int64) *int64 { return &v }
	good := func(name string, ago time.Duration) Observed {
		return Observed{Name: name, Found: true, Phase: "Completed", ItemsBackedUp: n(5), TotalItems: n(5),
			Completed: now.Add(-ago), LocationPhase: "Available"}
	}
	old, newer := good("old", 90*24*time.Hour), good("newer", 2*time.Hour)
	partial := good("partial", time.Minute)
	partial.Phase, partial.Errors = "PartiallyFailed", 1
	running := good("running", 0)
	running.Phase = "InProgress"
	for _, c := range []struct {
		name    string
		backups []Observed
		want    string
	}{
		{name: "none", want: ""},
		{name: "a failed and a running one are never picked", backups: []Observed{partial, running}, want: ""},
		{name: "the newest good one", backups: []Observed{old, partial, newer, running}, want: "newer"},
		{name: "a months-old one when it is the only good one", backups: []Observed{partial, old}, want: "old"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := Latest(c.backups, now)
			if ok != (c.want != "") || got.Name != c.want {
				t.Errorf("Latest = %q, %t; want %q", got.Name, ok, c.want)
			}
		})
	}
}

// The restore leaves out what labels keep out of backups, what exists,
// Velero's namespace, Leases and certificate signing requests.
func TestNewRestoreOverwritesNothingAndSkipsSeedsOwnState(t *testing.T) {
	r := NewRestore("velero", "b1-lifeboat", "b1", "velero", map[string]string{"seed.dev/taken-by": "seed-up"})
	spec := r.Object["spec"].(map[string]any)
	if spec["backupName"] != "b1" || spec["existingResourcePolicy"] != "none" {
		t.Errorf("spec %v", spec)
	}
	if ex, _, _ := unstructured.NestedStringSlice(r.Object, "spec", "excludedNamespaces"); len(ex) != 1 || ex[0] != "velero" {
		t.Errorf("excludedNamespaces %v", ex)
	}
	if ex, _, _ := unstructured.NestedStringSlice(r.Object, "spec", "excludedResources"); !slices.Equal(ex, []string{"leases.coordination.k8s.io", "certificatesigningrequests.certificates.k8s.io"}) {
		t.Errorf("excludedResources %v", ex)
	}
	exprs, _, _ := unstructured.NestedSlice(r.Object, "spec", "labelSelector", "matchExpressions")
	if len(exprs) != 1 || exprs[0].(map[string]any)["key"] != ExcludeLabel || exprs[0].(map[string]any)["operator"] != "NotIn" {
		t.Errorf("labelSelector %v", exprs)
	}
	b := NewBackup("velero", "c-manual-1", "default", nil)
	if ns, _, _ := unstructured.NestedStringSlice(b.Object, "spec", "includedNamespaces"); len(ns) != 1 || ns[0] != "*" {
		t.Errorf("backup namespaces %v", ns)
	}
	if snap, _, _ := unstructured.NestedBool(b.Object, "spec", "snapshotVolumes"); snap {
		t.Error("backup asks for volume snapshots, which no location Seed installs takes")
	}
}
