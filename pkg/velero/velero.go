package velero

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Velero's resources, all in group velero.io, version v1.
var (
	BackupGVR   = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backups"}
	RestoreGVR  = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "restores"}
	LocationGVR = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backupstoragelocations"}
)

// ExcludeLabel, set to "true" on an object, keeps Velero from backing it
// up. Seed puts it on the agent's own state (ledger, status, Lease), which
// a restore must never bring back: a stale ledger would make the agent redo
// or forget operations on machines.
const ExcludeLabel = "velero.io/exclude-from-backup"

// ExcludeLabels is the labels that keep an object out of backups.
func ExcludeLabels() map[string]string { return map[string]string{ExcludeLabel: "true"} }
