package velero

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// The statuses are Velero's own, as seen running v1.18.3 against
// versitygw (research/backups.md §6.1), read through ObservedFrom as the
// agent and the seed read them.
func TestJudgeEveryBackupOutcome(t *testing.T) {
	now := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	const maxAge = 30 * time.Minute
	for _, c := range []struct {
		name     string
		status   string // the Backup's status, JSON; "-" for no Backup
		deleting bool
		location string
		want     Verdict
		says     string
	}{
		{"completed, fresh, every item", `{"phase":"Completed","progress":{"itemsBackedUp":4,"totalItems":4},"completionTimestamp":"2026-12-02T06:35:24Z"}`, false, "Available",
			Verdict{Good: true, Reason: ReasonBackupReady}, "4 items"},
		{"completed with warnings only", `{"phase":"Completed","warnings":2,"progress":{"itemsBackedUp":4,"totalItems":4},"completionTimestamp":"2026-12-02T06:35:24Z"}`, false, "Available",
			Verdict{Good: true, Reason: ReasonBackupReady}, "completed"},
		{"partially failed", `{"phase":"PartiallyFailed","errors":1,"progress":{"itemsBackedUp":3,"totalItems":4},"completionTimestamp":"2026-12-02T06:35:24Z"}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupPartiallyFailed}, "1 errors"},
		{"finalizing, partially failed", `{"phase":"FinalizingPartiallyFailed","errors":2}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupPartiallyFailed}, "FinalizingPartiallyFailed"},
		{"failed", `{"phase":"Failed","failureReason":"backup execution failed: error checking if backup already exists in object storage: HeadObject: connection refused"}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupFailed}, "connection refused"},
		{"failed validation", `{"phase":"FailedValidation","validationErrors":["backup can't be created because BackupStorageLocation default is in Unavailable status."]}`, false, "Unavailable",
			Verdict{Final: true, Reason: ReasonBackupFailedValidation}, "Unavailable status"},
		{"being deleted", `{"phase":"Completed","progress":{"itemsBackedUp":4,"totalItems":4},"completionTimestamp":"2026-12-02T06:35:24Z"}`, true, "Available",
			Verdict{Final: true, Reason: ReasonBackupDeleting}, "deleted"},
		{"deleting phase", `{"phase":"Deleting"}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupDeleting}, "deleted"},
		{"completed without counts", `{"phase":"Completed","completionTimestamp":"2026-12-02T06:35:24Z"}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupIncomplete}, "no item counts"},
		{"completed with one count", `{"phase":"Completed","progress":{"totalItems":4},"completionTimestamp":"2026-12-02T06:35:24Z"}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupIncomplete}, "no item counts"},
		{"completed, nothing in it", `{"phase":"Completed","progress":{"itemsBackedUp":0,"totalItems":0},"completionTimestamp":"2026-12-02T06:35:24Z"}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupIncomplete}, "no items"},
		{"completed, items missing", `{"phase":"Completed","progress":{"itemsBackedUp":3,"totalItems":4},"completionTimestamp":"2026-12-02T06:35:24Z"}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupIncomplete}, "3 of 4"},
		{"completed with errors", `{"phase":"Completed","errors":1,"progress":{"itemsBackedUp":4,"totalItems":4},"completionTimestamp":"2026-12-02T06:35:24Z"}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupPartiallyFailed}, "1 errors"},
		{"completed without a time", `{"phase":"Completed","progress":{"itemsBackedUp":4,"totalItems":4}}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupIncomplete}, "no completion time"},
		{"stale", `{"phase":"Completed","progress":{"itemsBackedUp":4,"totalItems":4},"completionTimestamp":"2026-12-02T06:00:00Z"}`, false, "Available",
			Verdict{Final: true, Reason: ReasonBackupStale}, "1h0m0s ago, more than spec.backup.maxAge (30m0s)"},
		{"complete, location unavailable", `{"phase":"Completed","progress":{"itemsBackedUp":4,"totalItems":4},"completionTimestamp":"2026-12-02T06:35:24Z"}`, false, "Unavailable",
			Verdict{Reason: ReasonLocationUnavailable}, "storage location is Unavailable: dial tcp"},
		{"in progress", `{"phase":"InProgress","progress":{"itemsBackedUp":1,"totalItems":4}}`, false, "Available",
			Verdict{Reason: ReasonBackupInProgress}, "InProgress"},
		{"new, location unavailable", `{}`, false, "Unavailable",
			Verdict{Reason: ReasonLocationUnavailable}, "New and its storage location is Unavailable"},
		{"new, location not validated yet", `{"phase":"New"}`, false, "",
			Verdict{Reason: ReasonLocationUnavailable}, "not yet validated"},
		{"not created yet", "-", false, "Available",
			Verdict{Reason: ReasonBackupNotFound}, "does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b *unstructured.Unstructured
			if c.status != "-" {
				var status map[string]any
				// As the dynamic client decodes: whole numbers become int64.
				if err := utiljson.Unmarshal([]byte(c.status), &status); err != nil {
					t.Fatal(err)
				}
				b = &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "velero.io/v1", "kind": "Backup",
					"metadata": map[string]any{"name": "seed-upgrade-1", "namespace": "velero"},
					"status":   status,
				}}
				if c.deleting {
					b.SetDeletionTimestamp(&metav1Now)
				}
			}
			msg := ""
			if c.location == "Unavailable" {
				msg = "dial tcp 172.18.0.5:7070: connect: connection refused"
			}
			got := Judge(ObservedFrom("seed-upgrade-1", b, c.location, msg), now, maxAge)
			if got.Good != c.want.Good || got.Final != c.want.Final || got.Reason != c.want.Reason {
				t.Errorf("Judge = %+v, want good %v, final %v, reason %s", got, c.want.Good, c.want.Final, c.want.Reason)
			}
			if !strings.Contains(got.Message, c.says) || !strings.Contains(got.Message, "seed-upgrade-1") {
				t.Errorf("message %q does not name the backup and say %q", got.Message, c.says)
			}
		})
	}
}

var metav1Now = metav1.NewTime(time.Date(2026, 12, 2, 6, 59, 0, 0, time.UTC))
