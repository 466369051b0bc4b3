package plan

import (
	"slices"
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

func backupsOn(s *v1alpha1.ClusterSpec) { s.Backup.Enabled = true }

func available(recs ...BackupRecord) BackupInput {
	return BackupInput{LocationAvailable: true, Records: recs}
}

func record(gate, name string, ago time.Duration, v BackupVerdict) BackupRecord {
	return BackupRecord{Gate: gate, Name: name, RecordedAt: now.Add(-ago), Verdict: v}
}

var (
	good    = BackupVerdict{Good: true, Reason: "BackupReady", Message: "backup completed 1m ago with 300 items"}
	running = BackupVerdict{Reason: "BackupInProgress", Message: "backup b1 is InProgress"}
	failed  = BackupVerdict{Final: true, Reason: "BackupPartiallyFailed", Message: "backup b1 partially failed with 2 errors and 0 warnings"}
)

func TestBackupGate(t *testing.T) {
	// A cluster at v1 asked for v2: the control plane is replaced first.
	old := func() ([]providers.Machine, []Node) {
		ms, ns := workers("workers", "w", 2)
		for i := range ms {
			ms[i].KubernetesVersion = v1
		}
		return append(ms, with(controlPlane("cp"), version(v1))), append(ns, ready("cp", v1alpha1.ControlPlanePool))
	}
	ms, ns := old()
	// The control plane done, the workers still at v1.
	ums, uns := old()
	ums[len(ums)-1] = controlPlane("cp-new")
	uns[len(uns)-1] = ready("cp-new", v1alpha1.ControlPlanePool)
	// A pool that left the spec.
	gone, goneNodes := workers("batch", "b", 2)
	cp, cpNode := controlPlane("cp"), ready("cp", v1alpha1.ControlPlanePool)
	upgrade := GateUpgrade(v2)
	no := false

	tests := []testCase{
		{
			name:     "no backup yet: one is taken for the upgrade, and the control plane and the workers wait",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn),
			machines: ms, nodes: ns, self: "cp", backups: available(),
			want: []string{"TakeBackup control-plane", "Blocked control-plane/cp", "Blocked workers"},
			reasons: []string{"TakeBackup pool control-plane: a backup before the replacement of control-plane machine cp (Kubernetes v1.33.4, pool control-plane wants v1.34.2)",
				"the replacement of control-plane machine cp (Kubernetes v1.33.4, pool control-plane wants v1.34.2) waits for the backup taken for it"},
		},
		{
			name:     "the store is unreachable: no backup is asked for, and the status says why",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn),
			machines: ms, nodes: ns, self: "cp",
			backups: BackupInput{LocationMessage: "Velero finds the store at http://10.0.0.9:7070 Unavailable: dial tcp: connection refused"},
			want:    []string{"Blocked control-plane/cp", "Blocked workers"},
			reasons: []string{"waits for a backup, and none can be taken: Velero finds the store at http://10.0.0.9:7070 Unavailable: dial tcp: connection refused"},
		},
		{
			name:     "a backup in progress: wait for it",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn),
			machines: ms, nodes: ns, self: "cp", backups: available(record(upgrade, "b1", time.Minute, running)),
			want:    []string{"Blocked control-plane/cp", "Blocked workers"},
			reasons: []string{"waits for backup b1: backup b1 is InProgress"},
		},
		{
			name:     "a good backup: the control plane is replaced, as the upgrade the backup admits",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn),
			machines: ms, nodes: ns, self: "cp", backups: available(record(upgrade, "b1", time.Minute, good)),
			want: []string{"ReplaceControlPlane control-plane/cp", "Blocked workers"},
		},
		{
			name:     "a failed backup, just now: the next one waits a while",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn),
			machines: ms, nodes: ns, self: "cp", backups: available(record(upgrade, "b1", 10*time.Second, failed)),
			want:    []string{"Blocked control-plane/cp", "Blocked workers"},
			reasons: []string{"the last backup for it, b1, cannot let it go ahead: backup b1 partially failed with 2 errors", "a new backup is taken 1m0s after"},
		},
		{
			name:     "a failed backup, a while ago: a new one is taken, saying why",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn),
			machines: ms, nodes: ns, self: "cp", backups: available(record(upgrade, "b1", 2*time.Minute, failed)),
			want:    []string{"TakeBackup control-plane", "Blocked control-plane/cp", "Blocked workers"},
			reasons: []string{"a backup before the replacement of control-plane machine cp (Kubernetes v1.33.4, pool control-plane wants v1.34.2); the last backup for it, b1, cannot let it go ahead"},
		},
		{
			name:     "the replacement under way keeps its record",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn),
			machines: append(slices.Clone(ms), controlPlane("cp-new")), nodes: append(slices.Clone(ns), ready("cp-new", v1alpha1.ControlPlanePool)), self: "cp",
			ops: []Operation{func() Operation {
				op := replacing("cp-new", "cp", StepDrainOld)
				op.ReplacesVersion = v1
				return op
			}()},
			backups: available(BackupRecord{Gate: upgrade, Name: "b1", RecordedAt: now.Add(-time.Hour), Admitted: true, Verdict: failed}),
			want:    []string{"Blocked workers"},
		},
		{
			name:     "workers roll on the backup that admitted the upgrade, however old it is now",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn),
			machines: ums, nodes: uns, self: "cp-new",
			backups: available(BackupRecord{Gate: upgrade, Name: "b1", RecordedAt: now.Add(-5 * time.Hour), Admitted: true,
				Verdict: BackupVerdict{Final: true, Reason: "BackupStale", Message: "stale"}}),
			want: []string{"Create workers"},
		},
		{
			name:     "a pool's own upgrade waits for its backup, and scales at the version its machines run",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}, backupsOn),
			machines: ums, nodes: uns, self: "cp-new", backups: available(),
			want:    []string{"TakeBackup workers", "Create workers", "Blocked workers"},
			reasons: []string{"the upgrade of pool workers to Kubernetes v1.34.2 waits for the backup taken for it"},
		},
		{
			name:     "the upgrade done, its record is forgotten",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 1)}, backupsOn),
			machines: []providers.Machine{controlPlane("cp-new"), machine("w-1", "workers", time.Hour)},
			nodes:    []Node{ready("cp-new", v1alpha1.ControlPlanePool), ready("w-1", "workers")}, self: "cp-new",
			backups: available(BackupRecord{Gate: upgrade, Name: "b1", RecordedAt: now.Add(-time.Hour), Admitted: true, Verdict: good}),
			want:    []string{"ForgetBackup b1"},
			reasons: []string{"change upgrade-v1.34.2, which backup b1 was taken for, is no longer planned"},
		},
		{
			name:     "backups off: nothing waits",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}),
			machines: ms, nodes: ns, self: "cp",
			want: []string{"ReplaceControlPlane control-plane/cp", "Blocked workers"},
		},
		{
			name:     "beforeUpgrade false: the upgrade does not wait",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn, func(s *v1alpha1.ClusterSpec) { s.Backup.BeforeUpgrade = &no }),
			machines: ms, nodes: ns, self: "cp", backups: available(),
			want: []string{"ReplaceControlPlane control-plane/cp", "Blocked workers"},
		},
		{
			name:     "beforeUpgrade false: a removed pool still waits for its backup",
			cluster:  cluster(nil, backupsOn, func(s *v1alpha1.ClusterSpec) { s.Backup.BeforeUpgrade = &no }),
			machines: append(slices.Clone(gone), cp), nodes: append(slices.Clone(goneNodes), cpNode), self: "cp", backups: available(),
			want:    []string{"TakeBackup batch", "Blocked batch"},
			reasons: []string{"the removal of pool batch (2 machines) waits for the backup taken for it"},
		},
		{
			name:     "a removed pool with a good backup: its machines go",
			cluster:  cluster(nil, backupsOn),
			machines: append(slices.Clone(gone), cp), nodes: append(slices.Clone(goneNodes), cpNode), self: "cp",
			backups: available(record(GateRemovePool("batch"), "b2", time.Minute, good)),
			want:    []string{"Delete batch/b-1", "Delete batch/b-2"},
		},
		{
			name:     "a new control-plane machine type is gated on a backup of its own",
			cluster:  cluster(nil, backupsOn, func(s *v1alpha1.ClusterSpec) { s.ControlPlane.MachineType = "large" }),
			machines: []providers.Machine{with(controlPlane("cp"), func(m *providers.Machine) { m.MachineType = "small" })},
			nodes:    []Node{cpNode}, self: "cp", backups: available(record(upgrade, "b1", time.Minute, good)),
			want:    []string{"ForgetBackup b1", "TakeBackup control-plane", "Blocked control-plane/cp"},
			reasons: []string{"a backup before the replacement of control-plane machine cp (machine type small, pool control-plane wants large)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.run(t)
			for _, a := range got.Actions {
				switch {
				case a.Type == TakeBackup && a.Gate == "":
					t.Errorf("%s names no change", brief(a))
				case a.Type == ReplaceControlPlane && tc.cluster.Spec.Backup.Enabled && a.Gate == "":
					t.Errorf("%s carries no gate, so no record would show the backup admitted it", brief(a))
				}
			}
		})
	}
}

// The gate's actions carry the change they carry out, so that the
// executor marks the backup as having admitted it.
func TestGatedActionsNameTheirChange(t *testing.T) {
	ms, ns := workers("workers", "w", 2)
	for i := range ms {
		ms[i].KubernetesVersion = v1
	}
	ms = append(ms, controlPlane("cp"))
	ns = append(ns, ready("cp", v1alpha1.ControlPlanePool))
	got := Compute(Input{Cluster: cluster([]v1alpha1.NodePool{pool("workers", 2)}, backupsOn), Machines: ms, Nodes: ns,
		Self: "cp", Now: now, Backups: available(record(GateUpgrade(v2), "b1", time.Minute, good))})
	if len(got.Actions) == 0 {
		t.Fatal("no actions")
	}
	for _, a := range got.Actions {
		if a.Gate != GateUpgrade(v2) {
			t.Errorf("%s: gate %q, want %q", brief(a), a.Gate, GateUpgrade(v2))
		}
	}
}

// Held back for its backup, a pool creates machines at the version its
// machines run, not the one it waits to roll to.
func TestPoolHeldForItsBackupCreatesAtItsOwnVersion(t *testing.T) {
	ms, ns := workers("workers", "w", 2)
	for i := range ms {
		ms[i].KubernetesVersion = v1
	}
	ms = append(ms, controlPlane("cp"))
	ns = append(ns, ready("cp", v1alpha1.ControlPlanePool))
	got := Compute(Input{Cluster: cluster([]v1alpha1.NodePool{pool("workers", 3)}, backupsOn), Machines: ms, Nodes: ns,
		Self: "cp", Now: now, Backups: available()})
	creates := 0
	for _, a := range got.Actions {
		if a.Type == Create {
			creates++
			if a.Create.KubernetesVersion != v1 {
				t.Errorf("%s at %s, want %s", brief(a), a.Create.KubernetesVersion, v1)
			}
		}
	}
	if creates != 1 {
		t.Errorf("%d creates, want 1: %q", creates, got.Summary())
	}
}
