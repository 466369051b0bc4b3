package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/seedhq/seed/agent/backup"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

// ensureSchedule keeps Velero's Schedule in line with spec.backup.schedule
// (created, updated or deleted as agent/backup.PlanSchedule decides) and
// reports it in st, with the newest good backup among all of Velero's.
// It runs once Velero's CRDs are Established, whatever the store's state:
// backups a Schedule starts while the store is down fail, and that shows.
func (r *Reconciler) ensureSchedule(ctx context.Context, ps *pass, st *v1alpha1.BackupStatus) {
	s := backup.Scheduler{Dynamic: r.opts.Dynamic}
	step, err := s.Plan(ctx, ps.spec.Spec.Backup.Schedule)
	if err != nil {
		ps.errs = append(ps.errs, err)
	} else {
		if verb, ok := scheduleVerbs[step.Action]; ok {
			r.opts.Logger.Info(verb+" Velero Schedule", "schedule", backup.ScheduleName, "reason", step.Reason)
		}
		obj, err := s.Do(ctx, step)
		if step.Action != backup.ScheduleKeep {
			r.countAction(string(step.Action)+"BackupSchedule", err)
		}
		if err != nil {
			ps.errs = append(ps.errs, err)
		} else if obj != nil && ps.spec.Spec.Backup.Schedule != "" {
			v := backup.ScheduleStateFrom(obj)
			st.Schedule = &v1alpha1.BackupScheduleStatus{Name: backup.ScheduleName, Cron: v.Cron, Phase: v.Phase,
				ValidationErrors: v.ValidationErrors}
			if !v.LastBackup.IsZero() {
				t := v.LastBackup
				st.Schedule.LastBackup = &t
			}
		}
	}

	backups, err := s.Backups(ctx)
	if err != nil {
		// The gauge keeps its last value: a failed read says nothing new.
		ps.errs = append(ps.errs, err)
		return
	}
	last, ok := backup.LatestGood(backups, ps.now)
	var ts float64
	if ok {
		r.snapshotLatest(ctx, ps, last)
		st.LastSuccessful = &v1alpha1.BackupRef{Name: last.Name, CompletedAt: last.Completed,
			Age: v1alpha1.Duration{Duration: ps.now.Sub(last.Completed).Round(time.Second)}}
		ts = float64(last.Completed.Unix())
	}
	if m := r.opts.Metrics; m != nil {
		m.backupLastSuccess.Set(ts)
	}
}

var scheduleVerbs = map[backup.ScheduleAction]string{
	backup.ScheduleCreate: "Creating", backup.ScheduleUpdate: "Updating", backup.ScheduleDelete: "Deleting",
}

// backupMetrics sets, after the backups phase, the gauges that depend on
// the spec alone: whether a Schedule is kept, and no last success while
// backups are off (the agent then reads nothing of Velero's).
func (r *Reconciler) backupMetrics(ps *pass) {
	m := r.opts.Metrics
	if m == nil {
		return
	}
	b := ps.spec.Spec.Backup
	m.backupScheduled.Set(boolGauge(b.Enabled && b.Schedule != ""))
	if !b.Enabled {
		m.backupLastSuccess.Set(0)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// snapshotLatest stores an etcd snapshot beside the newest good backup
// when Velero's Schedule or `seed backup` took it (the gate's own take
// theirs as a step), so that every backup has one. Only a backup that
// completed within spec.backup.maxAge stands for the cluster as it is now:
// an older one (synced from the store into a new cluster, or missed while
// no agent ran) gets none. Each is looked for in the store once per agent.
func (r *Reconciler) snapshotLatest(ctx context.Context, ps *pass, last backup.Observed) {
	_, takenBy := last.Labels[backup.LabelTakenBy]
	ours := strings.HasPrefix(last.Name, backup.ScheduleName+"-") || takenBy
	if !ours || ps.store == nil || r.snapshotted[last.Name] || ps.now.Sub(last.Completed) > ps.spec.Spec.Backup.MaxAge.Duration {
		return
	}
	cluster := ps.spec.Metadata.Name
	if _, stored, err := backup.EtcdSnapshotStored(ctx, *ps.store, cluster, last.Name); err == nil && stored {
		r.snapshotted[last.Name] = true
		return
	}
	r.opts.Logger.Info("Taking the etcd snapshot of a backup", "backup", last.Name)
	err := r.opts.EtcdSnapshots.SnapshotEtcd(ctx, EtcdSnapshot{Cluster: cluster, Backup: last.Name, KubernetesVersion: r.runningVersion,
		Node: r.opts.Self, Endpoints: r.etcdEndpoints(ps, ""), Store: *ps.store})
	if err != nil {
		err = fmt.Errorf("taking the etcd snapshot of backup %s: %w", last.Name, err)
		r.event(ps.specCM, corev1.EventTypeWarning, "BackupFailed", "%v", err)
		ps.errs = append(ps.errs, err)
		return
	}
	r.snapshotted[last.Name] = true
	r.event(ps.specCM, corev1.EventTypeNormal, "BackupStored", "The etcd snapshot of backup %s is stored beside it", last.Name)
}
