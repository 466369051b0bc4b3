package backup

import "github.com/seedhq/seed/pkg/velero"

// The verdict on a backup lives in pkg/velero, where the seed reads it too
// (`seed backup` prints it); these keep the agent's callers as they were.
type (
	Observed = velero.Observed
	Verdict  = velero.Verdict
)

// Reasons the gate gives, as condition reasons and Event reasons.
const (
	ReasonBackupReady            = velero.ReasonBackupReady
	ReasonLocationUnavailable    = velero.ReasonLocationUnavailable
	ReasonBackupNotFound         = velero.ReasonBackupNotFound
	ReasonBackupInProgress       = velero.ReasonBackupInProgress
	ReasonBackupFailed           = velero.ReasonBackupFailed
	ReasonBackupPartiallyFailed  = velero.ReasonBackupPartiallyFailed
	ReasonBackupFailedValidation = velero.ReasonBackupFailedValidation
	ReasonBackupDeleting         = velero.ReasonBackupDeleting
	ReasonBackupIncomplete       = velero.ReasonBackupIncomplete
	ReasonBackupStale            = velero.ReasonBackupStale
)

// Judge and ObservedFrom are velero.Judge and velero.ObservedFrom.
var (
	Judge        = velero.Judge
	ObservedFrom = velero.ObservedFrom
)
