package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// BackupInput is what the planner knows of backups, for the gate on risky
// changes (see the package doc, "Backups before risky changes").
type BackupInput struct {
	// LocationAvailable: Velero's BackupStorageLocation was found
	// Available, so a backup taken now can succeed. A backup asked for
	// while it is not fails validation at once, so none is asked for.
	LocationAvailable bool
	// LocationMessage says why it is not available.
	LocationMessage string
	// Records are the backups the executor took for changes, from its
	// ledger, each with the verdict on it.
	Records []BackupRecord
}

// BackupRecord is a backup recorded for one risky change.
type BackupRecord struct {
	// Gate is the change it was taken for (see GateUpgrade and the like).
	Gate string
	// Name is the Velero Backup's name, recorded before it was created.
	Name       string
	RecordedAt time.Time
	// Admitted: the change went ahead on this backup. Its later steps
	// need no other, however old this one grows.
	Admitted bool
	Verdict  BackupVerdict
}

// BackupVerdict is the executor's judgement of a recorded backup: the
// Velero Backup's (agent/backup.Judge) and its etcd snapshot's.
type BackupVerdict struct {
	// Good: the change may go ahead.
	Good bool
	// Final: it will never be good; a new backup is needed. Neither Good
	// nor Final means wait.
	Final   bool
	Reason  string
	Message string
}

// BackupRetryInterval is how long after a backup that failed the next
// one for the same change is taken, so that a store that fails every
// backup is not asked for one every pass.
const BackupRetryInterval = time.Minute

// Gate keys: the risky change a backup is taken for. A backup admits one
// change; a change is one key whatever machines it touches.

// GateUpgrade is a change of Kubernetes version to version: the control
// plane's replacement and every worker pool's roll to it.
func GateUpgrade(version string) string { return "upgrade-" + version }

// GateReplaceControlPlane is the replacement of control-plane machine for
// another reason than a version (a new machine type).
func GateReplaceControlPlane(machine string) string { return "replace-control-plane-" + machine }

// GateRemovePool is the deletion of every machine of a pool removed from
// the spec.
func GateRemovePool(pool string) string { return "remove-pool-" + pool }

// gate reports whether the change key may go ahead. When it may not, it
// plans what will let it (a backup, once one can be taken) and a Blocked
// action on pool/machine saying what waits for what. A change that is
// asked about is under way: its record is kept.
func (p *planner) gate(key, pool, machine, what string) bool {
	p.wanted[key] = true
	b := p.in.Cluster.Spec.Backup
	if !b.Enabled || (strings.HasPrefix(key, "upgrade-") && b.BeforeUpgrade != nil && !*b.BeforeUpgrade) {
		return true
	}
	rec, recorded := p.records[key]
	if recorded && (rec.Admitted || rec.Verdict.Good) {
		return true
	}
	last := ""
	if recorded {
		last = fmt.Sprintf("; the last backup for it, %s, cannot let it go ahead: %s", rec.Name, rec.Verdict.Message)
	}
	block := func(reason string) {
		p.block(pool, machine, reason)
		p.actions[len(p.actions)-1].Gate = key
	}
	switch {
	case recorded && !rec.Verdict.Final:
		block(fmt.Sprintf("%s waits for backup %s: %s", what, rec.Name, rec.Verdict.Message))
	case !p.in.Backups.LocationAvailable:
		block(fmt.Sprintf("%s waits for a backup, and none can be taken: %s%s", what, p.in.Backups.LocationMessage, last))
	case recorded && p.in.Now.Sub(rec.RecordedAt) < BackupRetryInterval:
		block(fmt.Sprintf("%s waits%s; a new backup is taken %s after that one was asked for",
			what, last, dur(BackupRetryInterval)))
	default:
		if !p.taking[key] {
			p.taking[key] = true
			p.actions = append(p.actions, Action{Type: TakeBackup, Pool: pool, Gate: key,
				Reason: "a backup before " + what + last})
		}
		block(what + " waits for the backup taken for it")
	}
	return false
}

// forgetBackups plans the end of every record whose change no longer
// waits or runs: it is done, or the spec no longer asks for it.
func (p *planner) forgetBackups() {
	recs := slices.Clone(p.in.Backups.Records)
	slices.SortFunc(recs, func(a, b BackupRecord) int { return cmp.Compare(a.Gate, b.Gate) })
	for _, rec := range recs {
		if p.wanted[rec.Gate] || p.forgotten[rec.Gate] {
			continue
		}
		p.forgotten[rec.Gate] = true
		p.actions = append(p.actions, Action{Type: ForgetBackup, Machine: rec.Name, Gate: rec.Gate,
			Reason: "change " + rec.Gate + ", which backup " + rec.Name + " was taken for, is no longer planned: done or withdrawn"})
	}
}

// tagGate marks the actions planned from index from on as carrying out
// change key, so that the executor records that its backup admitted it.
func (p *planner) tagGate(from int, key string) {
	for i := from; i < len(p.actions); i++ {
		switch p.actions[i].Type {
		case Create, Delete, ReplaceControlPlane:
			p.actions[i].Gate = key
		}
	}
}
