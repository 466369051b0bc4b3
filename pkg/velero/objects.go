package velero

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// NoMaxAge is the maxAge to judge a backup by when its age does not
// matter: a restore takes the last good backup, however old.
const NoMaxAge = time.Duration(1<<63 - 1)

// NewBackup is a Backup of every namespace to location, without volume
// snapshots (Seed installs no snapshot location: asking for them makes a
// backup PartiallyFailed).
func NewBackup(namespace, name, location string, labels map[string]string) *unstructured.Unstructured {
	b := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "velero.io/v1",
		"kind":       "Backup",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{
			"includedNamespaces": []any{"*"},
			"storageLocation":    location,
			"snapshotVolumes":    false,
		},
	}}
	b.SetLabels(labels)
	return b
}

// NewRestore is a Restore of every namespace of backup that leaves alone
// what exists (so a restore never overwrites what the cluster holds, its
// agent's state included), Velero's own namespace (the agent installs it),
// and what belongs to the cluster that was backed up, not to the one
// restored into: Leases (who holds a lock) and certificate signing
// requests (its machines' credentials). Objects labelled out of backups
// are skipped too, should a backup hold one.
func NewRestore(namespace, name, backup, veleroNamespace string, labels map[string]string) *unstructured.Unstructured {
	r := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "velero.io/v1",
		"kind":       "Restore",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{
			"backupName":             backup,
			"includedNamespaces":     []any{"*"},
			"excludedNamespaces":     []any{veleroNamespace},
			"excludedResources":      []any{"leases.coordination.k8s.io", "certificatesigningrequests.certificates.k8s.io"},
			"existingResourcePolicy": "none",
			"labelSelector": map[string]any{"matchExpressions": []any{
				map[string]any{"key": ExcludeLabel, "operator": "NotIn", "values": []any{"true"}},
			}},
		},
	}}
	r.SetLabels(labels)
	return r
}

// Latest is the good backup (by Judge, at now, whatever its age) that
// completed last; ok is false when there is none.
func Latest(backups []Observed, now time.Time) (latest Observed, ok bool) {
	var good []Observed
	for _, b := range backups {
		if Judge(b, now, NoMaxAge).Good {
			good = append(good, b)
		}
	}
	if len(good) == 0 {
		return Observed{}, false
	}
	return slices.MaxFunc(good, func(a, b Observed) int {
		// The name breaks ties, so the pick does not depend on list order.
		return cmp.Or(a.Completed.Compare(b.Completed), cmp.Compare(a.Name, b.Name))
	}), true
}

// RestoreObserved is what the seed reads of one Velero Restore.
type RestoreObserved struct {
	Name  string
	Found bool
	// Backup is spec.backupName.
	Backup string
	// Phase is status.phase ("" before Velero has looked at it).
	Phase string
	// Errors and Warnings are status.errors and status.warnings, left out
	// by Velero when zero.
	Errors   int64
	Warnings int64
	// ItemsRestored and TotalItems are status.progress's, nil when absent.
	ItemsRestored *int64
	TotalItems    *int64
	// FailureReason and ValidationErrors are Velero's own explanations.
	FailureReason    string
	ValidationErrors []string
}

// RestoreObservedFrom reads a Restore (nil when it does not exist).
func RestoreObservedFrom(name string, r *unstructured.Unstructured) RestoreObserved {
	o := RestoreObserved{Name: name}
	if r == nil {
		return o
	}
	o.Found = true
	o.Backup, _, _ = unstructured.NestedString(r.Object, "spec", "backupName")
	st := func(fields ...string) []string { return append([]string{"status"}, fields...) }
	o.Phase, _, _ = unstructured.NestedString(r.Object, st("phase")...)
	o.Errors, _, _ = unstructured.NestedInt64(r.Object, st("errors")...)
	o.Warnings, _, _ = unstructured.NestedInt64(r.Object, st("warnings")...)
	if v, ok, _ := unstructured.NestedInt64(r.Object, st("progress", "itemsRestored")...); ok {
		o.ItemsRestored = &v
	}
	if v, ok, _ := unstructured.NestedInt64(r.Object, st("progress", "totalItems")...); ok {
		o.TotalItems = &v
	}
	o.FailureReason, _, _ = unstructured.NestedString(r.Object, st("failureReason")...)
	o.ValidationErrors, _, _ = unstructured.NestedStringSlice(r.Object, st("validationErrors")...)
	return o
}

// Reasons JudgeRestore gives.
const (
	ReasonRestoreCompleted        = "RestoreCompleted"
	ReasonRestoreNotFound         = "RestoreNotFound"
	ReasonRestoreInProgress       = "RestoreInProgress"
	ReasonRestoreFailed           = "RestoreFailed"
	ReasonRestorePartiallyFailed  = "RestorePartiallyFailed"
	ReasonRestoreFailedValidation = "RestoreFailedValidation"
)

// JudgeRestore says whether a restore is done (Good), failed for good
// (Final), or still running. Completed is done, warnings and all (objects
// that exist already are warnings). PartiallyFailed is a failure: Velero
// ends a restore so when it restored nothing at all.
func JudgeRestore(o RestoreObserved) Verdict {
	final := func(reason, format string, args ...any) Verdict {
		return Verdict{Final: true, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	switch o.Phase {
	case "Completed":
		if o.Errors > 0 {
			return final(ReasonRestorePartiallyFailed, "restore %s completed with %d errors", o.Name, o.Errors)
		}
		return Verdict{Good: true, Reason: ReasonRestoreCompleted,
			Message: fmt.Sprintf("restore %s of backup %s completed: %s, %d warnings", o.Name, o.Backup, o.items(), o.Warnings)}
	case "PartiallyFailed", "WaitingForPluginOperationsPartiallyFailed", "FinalizingPartiallyFailed":
		return final(ReasonRestorePartiallyFailed, "restore %s of backup %s %s with %d errors and %d warnings (%s)%s",
			o.Name, o.Backup, phaseVerb(o.Phase), o.Errors, o.Warnings, o.items(), because(o.FailureReason))
	case "Failed":
		return final(ReasonRestoreFailed, "restore %s of backup %s failed%s", o.Name, o.Backup, because(o.FailureReason))
	case "FailedValidation":
		return final(ReasonRestoreFailedValidation, "restore %s of backup %s failed validation%s",
			o.Name, o.Backup, because(strings.Join(o.ValidationErrors, "; ")))
	}
	if !o.Found {
		return Verdict{Reason: ReasonRestoreNotFound, Message: fmt.Sprintf("restore %s does not exist yet", o.Name)}
	}
	phase := o.Phase
	if phase == "" {
		phase = "New"
	}
	return Verdict{Reason: ReasonRestoreInProgress, Message: fmt.Sprintf("restore %s is %s (%s)", o.Name, phase, o.items())}
}

func (o RestoreObserved) items() string {
	if o.TotalItems == nil || o.ItemsRestored == nil {
		return "no item counts yet"
	}
	return fmt.Sprintf("%d of %d items restored", *o.ItemsRestored, *o.TotalItems)
}
