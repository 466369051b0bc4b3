package controller

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/seedhq/seed/agent/backup"
	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	seedledger "github.com/seedhq/seed/pkg/ledger"
	"github.com/seedhq/seed/pkg/plan"
)

// EtcdSnapshot asks for the etcd snapshot that goes with backup Backup:
// taken from one of Endpoints and stored in Store beside the backup, with
// the control plane's certificates.
type EtcdSnapshot struct {
	Cluster, Backup, KubernetesVersion, Node string
	Endpoints                                []string
	Store                                    backup.Store
}

// EtcdSnapshotter takes and stores etcd snapshots. Taking one again for
// the same backup replaces it.
type EtcdSnapshotter interface {
	SnapshotEtcd(ctx context.Context, req EtcdSnapshot) error
}

// etcdSnapshotter takes snapshots through etcd's gateway with the agent's
// client certificate (agent/backup.Snapshotter).
type etcdSnapshotter struct{ s backup.Snapshotter }

func (e etcdSnapshotter) SnapshotEtcd(ctx context.Context, req EtcdSnapshot) error {
	_, err := e.s.Take(ctx, req.Store, req.Endpoints, backup.SnapshotMeta{Cluster: req.Cluster, Backup: req.Backup,
		Node: req.Node, KubernetesVersion: req.KubernetesVersion})
	return err
}

// noSnapshots is the snapshotter of an agent with no etcd client
// certificate: every snapshot fails, saying why.
type noSnapshots struct{ err error }

func (n noSnapshots) SnapshotEtcd(context.Context, EtcdSnapshot) error { return n.err }

// backupTTL is how long Velero keeps a backup taken for a change.
const backupTTL = 30 * 24 * time.Hour

// observeBackups judges every recorded backup for the planner: Velero's
// verdict on it (backup.Judge), held back until its etcd snapshot is
// stored. A record whose change went ahead is not read again.
func (r *Reconciler) observeBackups(ctx context.Context, ps *pass) plan.BackupInput {
	in := plan.BackupInput{LocationAvailable: ps.location.phase == "Available", LocationMessage: ps.location.message}
	if !ps.spec.Spec.Backup.Enabled {
		return in
	}
	maxAge := ps.spec.Spec.Backup.MaxAge.Duration
	for _, rec := range seedledger.Backups(ps.led.Entries) {
		e := ps.led.Entries[seedledger.BackupEntryName(rec.Gate)]
		if !rec.Admitted {
			rec.Verdict = r.judgeRecorded(ctx, ps, e, maxAge)
		}
		in.Records = append(in.Records, rec)
	}
	ps.backups = in
	return in
}

func (r *Reconciler) judgeRecorded(ctx context.Context, ps *pass, e *ledgerEntry, maxAge time.Duration) plan.BackupVerdict {
	if e.NextStep() == plan.StepCreateBackup {
		return plan.BackupVerdict{Reason: backup.ReasonBackupNotFound, Message: "backup " + e.Backup + " is being asked for"}
	}
	var obj *unstructured.Unstructured
	if r.opts.Dynamic != nil {
		got, err := r.opts.Dynamic.Resource(backup.BackupGVR).Namespace(manifests.DefaultVeleroNamespace).Get(ctx, e.Backup, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			// Asked for and gone: deleted, or expired. Never coming back.
			return plan.BackupVerdict{Final: true, Reason: backup.ReasonBackupNotFound,
				Message: "backup " + e.Backup + " no longer exists: it was deleted"}
		case err != nil:
			return plan.BackupVerdict{Reason: "BackupUnknown", Message: fmt.Sprintf("reading backup %s: %v", e.Backup, err)}
		}
		obj = got
	}
	v := backup.Judge(backup.ObservedFrom(e.Backup, obj, ps.location.phase, ps.location.message), ps.now, maxAge)
	verdict := plan.BackupVerdict{Good: v.Good, Final: v.Final, Reason: v.Reason, Message: v.Message}
	ps.veleroGood[e.Gate] = v.Good
	if v.Good && e.NextStep() != plan.StepBackupDone {
		verdict = plan.BackupVerdict{Reason: "EtcdSnapshotPending",
			Message: "backup " + e.Backup + " is complete; its etcd snapshot is being stored" + lastError(e)}
	}
	return verdict
}

func lastError(e *ledgerEntry) string {
	if e.LastError == "" {
		return ""
	}
	return " (last attempt: " + e.LastError + ")"
}

// recordBackupDecisions records what the plan decided about backups: a
// name for each backup it takes, the records it forgets, and the records
// whose change goes ahead in this plan (Admitted), all before any of it
// is done.
func (r *Reconciler) recordBackupDecisions(ps *pass) {
	led := ps.led
	for _, a := range ps.plan.Actions {
		switch {
		case a.Type == plan.TakeBackup:
			name := backupName(ps.spec.Metadata.Name, a.Gate, ps.now)
			led.Entries[seedledger.BackupEntryName(a.Gate)] = &ledgerEntry{Op: plan.OpBackup, Step: plan.StepCreateBackup,
				Pool: a.Pool, Gate: a.Gate, Backup: name, Reason: a.Reason, RecordedAt: ps.now}
			r.opts.Logger.Info("Taking a backup", "backup", name, "change", a.Gate, "reason", a.Reason)
			r.event(ps.specCM, corev1.EventTypeNormal, "TakingBackup", "Taking backup %s: %s", name, a.Reason)
		case a.Type == plan.ForgetBackup:
			delete(led.Entries, seedledger.BackupEntryName(a.Gate))
			r.opts.Logger.Info("Forgetting backup record", "backup", a.Machine, "change", a.Gate, "reason", a.Reason)
		case a.Gate != "":
			e, ok := led.Entries[seedledger.BackupEntryName(a.Gate)]
			if ok && e.Op == plan.OpBackup && !e.Admitted && a.Type != plan.Blocked {
				e.Admitted = true
				r.opts.Logger.Info("Backup admits the change", "backup", e.Backup, "change", a.Gate, "action", a.Type)
				r.event(ps.specCM, corev1.EventTypeNormal, "BackupAdmitted", "Backup %s admits change %s", e.Backup, a.Gate)
			}
		}
	}
}

// advanceBackups takes the next step of every recorded backup: ask Velero
// for it (a name already taken means a killed agent asked before: the
// same backup), then, once Velero's part is good, the etcd snapshot.
func (r *Reconciler) advanceBackups(ctx context.Context, ps *pass) {
	for _, name := range sortedKeys(ps.led.Entries) {
		e := ps.led.Entries[name]
		if e.Op != plan.OpBackup {
			continue
		}
		var err error
		switch e.NextStep() {
		case plan.StepCreateBackup:
			if err = r.createBackup(ctx, ps, e); err == nil {
				e.Step, e.LastError, ps.moved = plan.StepWaitBackup, "", true
			}
		case plan.StepWaitBackup:
			if ps.veleroGood[e.Gate] {
				e.Step, ps.moved = plan.StepEtcdSnapshot, true
			}
		case plan.StepEtcdSnapshot:
			if !ps.veleroGood[e.Gate] {
				break // judged again next pass; a stale backup is the planner's to replace
			}
			if err = r.snapshotEtcd(ctx, ps, e); err == nil {
				e.Step, e.LastError, ps.moved = plan.StepBackupDone, "", true
				r.opts.Logger.Info("Backup stored", "backup", e.Backup, "change", e.Gate)
				r.event(ps.specCM, corev1.EventTypeNormal, "BackupStored", "Backup %s and its etcd snapshot are stored", e.Backup)
			}
		}
		if err != nil {
			e.LastError = err.Error()
			r.event(ps.specCM, corev1.EventTypeWarning, "BackupFailed", "%v", err)
			ps.errs = append(ps.errs, err)
		}
	}
}

func (r *Reconciler) createBackup(ctx context.Context, ps *pass, e *ledgerEntry) error {
	if r.opts.Dynamic == nil {
		return fmt.Errorf("creating backup %s: the agent has no dynamic client to reach Velero's resources", e.Backup)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "velero.io/v1",
		"kind":       "Backup",
		"metadata": map[string]any{
			"name":      e.Backup,
			"namespace": manifests.DefaultVeleroNamespace,
			"labels": map[string]any{
				"app.kubernetes.io/managed-by": "seed-agent",
				"seed.dev/cluster":             labelValue(ps.spec.Metadata.Name),
				"seed.dev/change":              labelValue(e.Gate),
			},
			"annotations": map[string]any{"seed.dev/reason": e.Reason},
		},
		"spec": map[string]any{
			"includedNamespaces": []any{"*"},
			"storageLocation":    manifests.VeleroLocation,
			"ttl":                backupTTL.String(),
			// No volume snapshotter is installed: PersistentVolumes'
			// data is outside these backups (see the README).
			"snapshotVolumes": false,
		},
	}}
	_, err := r.opts.Dynamic.Resource(backup.BackupGVR).Namespace(manifests.DefaultVeleroNamespace).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating backup %s: %w", e.Backup, err)
	}
	return nil
}

func (r *Reconciler) snapshotEtcd(ctx context.Context, ps *pass, e *ledgerEntry) error {
	if r.opts.EtcdSnapshots == nil {
		return fmt.Errorf("taking the etcd snapshot of backup %s: the agent has no etcd snapshotter", e.Backup)
	}
	if ps.store == nil {
		return fmt.Errorf("taking the etcd snapshot of backup %s: the backup store is not known this pass", e.Backup)
	}
	req := EtcdSnapshot{Cluster: ps.spec.Metadata.Name, Backup: e.Backup, KubernetesVersion: r.runningVersion,
		Node: r.opts.Self, Endpoints: r.etcdEndpoints(ps, ""), Store: *ps.store}
	if err := r.opts.EtcdSnapshots.SnapshotEtcd(ctx, req); err != nil {
		return fmt.Errorf("taking the etcd snapshot of backup %s: %w", e.Backup, err)
	}
	return nil
}

// reportGate sets the condition ChangeWaitingForBackup from the plan's
// Blocked actions on gated changes, and status.backup's list of records.
func (r *Reconciler) reportGate(ps *pass) {
	if !ps.spec.Spec.Backup.Enabled {
		r.status.RemoveCondition(v1alpha1.ConditionChangeWaitingForBackup)
		return
	}
	var waiting []string
	reason := ""
	for _, a := range ps.plan.Actions {
		if a.Type != plan.Blocked || a.Gate == "" {
			continue
		}
		waiting = append(waiting, a.Reason)
		if reason == "" {
			reason = gateReason(ps.backups, a.Gate)
		}
	}
	if len(waiting) == 0 {
		r.status.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionChangeWaitingForBackup, Status: "False",
			Reason: "NothingWaits", Message: "no risky change waits for a backup"}, ps.now)
	} else {
		r.status.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionChangeWaitingForBackup, Status: "True",
			Reason: reason, Message: strings.Join(waiting, "; ")}, ps.now)
	}
	if st := r.status.Backup; st != nil {
		st.Changes = nil
		for _, rec := range ps.backups.Records {
			e := ps.led.Entries[seedledger.BackupEntryName(rec.Gate)]
			c := v1alpha1.BackupForChange{Change: rec.Gate, Backup: rec.Name, RecordedAt: rec.RecordedAt, Admitted: rec.Admitted,
				Good: rec.Verdict.Good, Final: rec.Verdict.Final, Reason: rec.Verdict.Reason, Message: rec.Verdict.Message}
			if e != nil {
				c.Step = string(e.NextStep())
			}
			st.Changes = append(st.Changes, c)
		}
	}
}

// gateReason is why change gate waits, as a condition reason.
func gateReason(in plan.BackupInput, gate string) string {
	for _, rec := range in.Records {
		if rec.Gate == gate && rec.Verdict.Reason != "" {
			return rec.Verdict.Reason
		}
	}
	if !in.LocationAvailable {
		return backup.ReasonLocationUnavailable
	}
	return "BackupRequested"
}

var notLabel = regexp.MustCompile(`[^a-z0-9.-]+`)

// backupName names the backup for change gate of cluster, taken at now: a
// DNS label of at most 63 characters (Velero puts it in labels), unique
// per second, which is as often as the planner takes one per change.
func backupName(cluster, gate string, now time.Time) string {
	stamp := now.UTC().Format("20060102-150405")
	body := strings.Trim(notLabel.ReplaceAllString(strings.ToLower(cluster+"-"+gate), "-"), "-.")
	body = strings.ReplaceAll(body, ".", "-")
	if room := 63 - len(stamp) - 1; len(body) > room {
		body = strings.TrimRight(body[:room], "-")
	}
	return body + "-" + stamp
}

// labelValue fits s to a label value: 63 characters of [a-z0-9.-_].
func labelValue(s string) string {
	v := notLabel.ReplaceAllString(strings.ToLower(s), "-")
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.Trim(v, "-.")
}
