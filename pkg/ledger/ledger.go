package ledger

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

// Entry is one operation (plan.Operation) on one machine that the
// agent has recorded and not yet seen through. Its Step is the next step to
// take, written before that step is taken, so an agent killed at any point
// resumes exactly there. Every step is idempotent.
type Entry struct {
	Op                plan.OperationType `json:"op"`
	Step              plan.Step          `json:"step,omitempty"`
	Pool              string             `json:"pool"`
	Role              string             `json:"role,omitempty"`
	MachineType       string             `json:"machineType,omitempty"`
	KubernetesVersion string             `json:"kubernetesVersion,omitempty"`
	Reason            string             `json:"reason,omitempty"`
	RecordedAt        time.Time          `json:"recordedAt"`
	DrainStartedAt    *time.Time         `json:"drainStartedAt,omitempty"`
	// PodsLeft and BlockedBy are where the drain last stood, so that the
	// decision to give up on it can say what it gave up on, whichever agent
	// takes it.
	PodsLeft  int      `json:"podsLeft,omitempty"`
	BlockedBy []string `json:"blockedBy,omitempty"`
	// LastError is the last failure of this operation's current step.
	LastError string `json:"lastError,omitempty"`
	// Replaces is the control-plane machine a replace-control-plane
	// operation replaces; the entry's name is the new machine's.
	Replaces string `json:"replaces,omitempty"`
	// ReplacesVersion is the Kubernetes version the replaced machine runs.
	ReplacesVersion string `json:"replacesVersion,omitempty"`
	// StepStartedAt is when the current step became the next one.
	StepStartedAt *time.Time `json:"stepStartedAt,omitempty"`
	// Waiting says what the current step waits for, when it waits.
	Waiting string `json:"waiting,omitempty"`

	// Gate, Backup and Admitted are a backup operation's (plan.OpBackup):
	// the change it is taken for, the Velero Backup's name (recorded
	// before it is created), and whether the change went ahead on it.
	Gate     string `json:"gate,omitempty"`
	Backup   string `json:"backup,omitempty"`
	Admitted bool   `json:"admitted,omitempty"`

	// Voluntary marks a deletion the autoscaler chose: its drain is
	// cancelled, never forced, when it cannot finish.
	Voluntary bool `json:"voluntary,omitempty"`
}

// BackupEntryPrefix starts the names of backup entries: "backup." and the
// gate. A machine's name never holds a dot.
const BackupEntryPrefix = "backup."

// BackupEntryName is the ledger name of the backup for change gate.
func BackupEntryName(gate string) string { return BackupEntryPrefix + gate }

// NextStep returns the next step, also for entries written before steps
// were recorded: a creation's only step, a deletion's first.
func (e *Entry) NextStep() plan.Step {
	switch {
	case e.Step != "":
		return e.Step
	case e.Op == plan.OpCreate:
		return plan.StepCreate
	case e.Op == plan.OpReplaceControlPlane:
		return plan.StepPrepare
	case e.Op == plan.OpBackup:
		return plan.StepCreateBackup
	default:
		return plan.StepDrain
	}
}

// Operation is the entry of machine name as the planner reads it.
func (e *Entry) Operation(name string) plan.Operation {
	op := plan.Operation{Type: e.Op, Machine: name, Step: e.NextStep(), Pool: e.Pool, RecordedAt: e.RecordedAt,
		Spec: e.MachineSpec(name), Replaces: e.Replaces, ReplacesVersion: e.ReplacesVersion,
		Voluntary: e.Voluntary, BlockedBy: e.BlockedBy}
	if e.DrainStartedAt != nil {
		op.DrainStartedAt = *e.DrainStartedAt
	}
	return op
}

// MachineSpec is the machine the entry is about, as far as it records it.
func (e *Entry) MachineSpec(name string) providers.MachineSpec {
	return providers.MachineSpec{Name: name, Pool: e.Pool, Role: providers.Role(e.Role),
		MachineType: e.MachineType, KubernetesVersion: e.KubernetesVersion}
}

// Decode reads the ledger ConfigMap's data. A damaged entry is dropped,
// not an error: it must not stop the agent, and the planner's orphan rule
// takes care of any machine behind it.
func Decode(data map[string]string) map[string]*Entry {
	entries := make(map[string]*Entry, len(data))
	for name, raw := range data {
		var e Entry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			continue
		}
		entries[name] = &e
	}
	return entries
}

// Operations lists the machines' entries for the planner, by machine
// name; backups are Backups'.
func Operations(entries map[string]*Entry) []plan.Operation {
	names := make([]string, 0, len(entries))
	for name, e := range entries {
		if e.Op != plan.OpBackup {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make([]plan.Operation, 0, len(names))
	for _, name := range names {
		out = append(out, entries[name].Operation(name))
	}
	return out
}

// Backups lists the backup entries as the planner reads them, by gate,
// with no verdict: judging them is the caller's.
func Backups(entries map[string]*Entry) []plan.BackupRecord {
	var out []plan.BackupRecord
	for _, e := range entries {
		if e.Op == plan.OpBackup {
			out = append(out, plan.BackupRecord{Gate: e.Gate, Name: e.Backup, RecordedAt: e.RecordedAt, Admitted: e.Admitted})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Gate < out[j].Gate })
	return out
}
