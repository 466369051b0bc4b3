package velero

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Observed is what the gate reads of one Velero Backup and of the
// location it was written to.
type Observed struct {
	// Name is the Backup's; Found is false when no such Backup exists.
	Name  string
	Found bool
	// Labels are the Backup's.
	Labels map[string]string
	// Deleting: the Backup has a deletionTimestamp.
	Deleting bool
	// Phase is status.phase ("" before Velero has looked at it).
	Phase string
	// Errors and Warnings are status.errors and status.warnings, which
	// Velero leaves out when they are zero.
	Errors   int64
	Warnings int64
	// ItemsBackedUp and TotalItems are status.progress's, nil when absent.
	ItemsBackedUp *int64
	TotalItems    *int64
	// Completed is status.completionTimestamp (zero when absent).
	Completed time.Time
	// FailureReason and ValidationErrors are Velero's own explanations.
	FailureReason    string
	ValidationErrors []string
	// LocationPhase and LocationMessage are the BackupStorageLocation's.
	LocationPhase   string
	LocationMessage string
}

// LabelTakenBy, set to "seed" on the Backups and Restores `seed backup`
// and `seed restore` ask for; the agent stores an etcd snapshot beside
// such a Backup as beside its own.
const LabelTakenBy = "seed.dev/taken-by"

// Reasons the gate gives, as condition reasons and Event reasons.
const (
	ReasonBackupReady            = "BackupReady"
	ReasonLocationUnavailable    = "BackupLocationUnavailable"
	ReasonBackupNotFound         = "BackupNotFound"
	ReasonBackupInProgress       = "BackupInProgress"
	ReasonBackupFailed           = "BackupFailed"
	ReasonBackupPartiallyFailed  = "BackupPartiallyFailed"
	ReasonBackupFailedValidation = "BackupFailedValidation"
	ReasonBackupDeleting         = "BackupDeleting"
	ReasonBackupIncomplete       = "BackupIncomplete"
	ReasonBackupStale            = "BackupStale"
)

// Verdict is the gate's answer about one backup.
type Verdict struct {
	// Good: the change it was taken for may go ahead.
	Good bool
	// Final: this backup can never become good (failed, stale, deleted):
	// a new one must be taken. Not Good and not Final means wait.
	Final bool
	// Reason is one of the Reason constants; Message says it for people.
	Reason  string
	Message string
}

// Judge decides whether backup o, taken for a risky change, lets the
// change go ahead at now. A backup is good only when it is Completed with no
// errors, every item it counted is backed up and it counted some, it
// completed within maxAge, and its location is Available. PartiallyFailed
// is a failure: it can mean nothing was backed up at all.
func Judge(o Observed, now time.Time, maxAge time.Duration) Verdict {
	wait := func(reason, format string, args ...any) Verdict {
		return Verdict{Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	final := func(reason, format string, args ...any) Verdict {
		return Verdict{Final: true, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if !o.Found {
		return wait(ReasonBackupNotFound, "backup %s does not exist yet", o.Name)
	}
	if o.Deleting {
		return final(ReasonBackupDeleting, "backup %s is being deleted", o.Name)
	}
	switch o.Phase {
	case "Completed":
	case "PartiallyFailed", "WaitingForPluginOperationsPartiallyFailed", "FinalizingPartiallyFailed":
		// The last two end PartiallyFailed: there is no waiting them out.
		return final(ReasonBackupPartiallyFailed, "backup %s %s with %d errors and %d warnings%s",
			o.Name, phaseVerb(o.Phase), o.Errors, o.Warnings, because(o.FailureReason))
	case "Failed":
		return final(ReasonBackupFailed, "backup %s failed%s", o.Name, because(o.FailureReason))
	case "FailedValidation":
		return final(ReasonBackupFailedValidation, "backup %s failed validation%s", o.Name, because(strings.Join(o.ValidationErrors, "; ")))
	case "Deleting":
		return final(ReasonBackupDeleting, "backup %s is being deleted", o.Name)
	default:
		phase := o.Phase
		if phase == "" {
			phase = "New"
		}
		if o.LocationPhase != "Available" {
			// Said first: it is why a backup waits and then fails.
			return wait(ReasonLocationUnavailable, "backup %s is %s and its storage location is %s%s",
				o.Name, phase, orUnknown(o.LocationPhase), because(o.LocationMessage))
		}
		return wait(ReasonBackupInProgress, "backup %s is %s", o.Name, phase)
	}
	// Completed.
	if o.Errors > 0 {
		return final(ReasonBackupPartiallyFailed, "backup %s completed with %d errors", o.Name, o.Errors)
	}
	switch {
	case o.TotalItems == nil || o.ItemsBackedUp == nil:
		return final(ReasonBackupIncomplete, "backup %s reports no item counts, so nothing shows it holds the cluster", o.Name)
	case *o.TotalItems == 0:
		return final(ReasonBackupIncomplete, "backup %s holds no items", o.Name)
	case *o.ItemsBackedUp != *o.TotalItems:
		return final(ReasonBackupIncomplete, "backup %s holds %d of %d items", o.Name, *o.ItemsBackedUp, *o.TotalItems)
	}
	if o.Completed.IsZero() {
		return final(ReasonBackupIncomplete, "backup %s has no completion time", o.Name)
	}
	if age := now.Sub(o.Completed); age > maxAge {
		return final(ReasonBackupStale, "backup %s completed %s ago, more than spec.backup.maxAge (%s)",
			o.Name, age.Round(time.Second), maxAge)
	}
	if o.LocationPhase != "Available" {
		return wait(ReasonLocationUnavailable, "backup %s is complete but its storage location is %s%s",
			o.Name, orUnknown(o.LocationPhase), because(o.LocationMessage))
	}
	return Verdict{Good: true, Reason: ReasonBackupReady,
		Message: fmt.Sprintf("backup %s completed %s ago with %d items", o.Name, now.Sub(o.Completed).Round(time.Second), *o.TotalItems)}
}

func phaseVerb(phase string) string {
	if phase == "PartiallyFailed" {
		return "partially failed"
	}
	return "is " + phase
}

func because(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func orUnknown(phase string) string {
	if phase == "" {
		return "not yet validated"
	}
	return phase
}

// ObservedFrom reads a Backup (nil when it does not exist) into Observed.
func ObservedFrom(name string, b *unstructured.Unstructured, locationPhase, locationMessage string) Observed {
	o := Observed{Name: name, LocationPhase: locationPhase, LocationMessage: locationMessage}
	if b == nil {
		return o
	}
	o.Found = true
	o.Labels = b.GetLabels()
	o.Deleting = b.GetDeletionTimestamp() != nil
	st := func(fields ...string) []string { return append([]string{"status"}, fields...) }
	o.Phase, _, _ = unstructured.NestedString(b.Object, st("phase")...)
	o.Errors, _, _ = unstructured.NestedInt64(b.Object, st("errors")...)
	o.Warnings, _, _ = unstructured.NestedInt64(b.Object, st("warnings")...)
	if v, ok, _ := unstructured.NestedInt64(b.Object, st("progress", "itemsBackedUp")...); ok {
		o.ItemsBackedUp = &v
	}
	if v, ok, _ := unstructured.NestedInt64(b.Object, st("progress", "totalItems")...); ok {
		o.TotalItems = &v
	}
	if s, _, _ := unstructured.NestedString(b.Object, st("completionTimestamp")...); s != "" {
		o.Completed, _ = time.Parse(time.RFC3339, s)
	}
	o.FailureReason, _, _ = unstructured.NestedString(b.Object, st("failureReason")...)
	o.ValidationErrors, _, _ = unstructured.NestedStringSlice(b.Object, st("validationErrors")...)
	return o
}
