package plan

import (
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

func replacing(newName, old string, step Step) Operation {
	return Operation{Type: OpReplaceControlPlane, Machine: newName, Replaces: old, Pool: v1alpha1.ControlPlanePool, Step: step,
		RecordedAt: now.Add(-time.Minute),
		Spec:       providers.MachineSpec{Name: newName, Pool: v1alpha1.ControlPlanePool, Role: providers.RoleControlPlane, KubernetesVersion: v2}}
}

func TestUpgrade(t *testing.T) {
	old := func() ([]providers.Machine, []Node) {
		ms, ns := workers("workers", "w", 2)
		for i := range ms {
			ms[i].KubernetesVersion = v1
		}
		return append(ms, with(controlPlane("cp"), version(v1))), append(ns, ready("cp", v1alpha1.ControlPlanePool))
	}
	ms, ns := old()
	withNew := append(append([]providers.Machine{}, ms...), controlPlane("cp-new"))
	withNewNodes := append(append([]Node{}, ns...), ready("cp-new", v1alpha1.ControlPlanePool))
	upgraded := func() ([]providers.Machine, []Node) {
		ms, ns := old()
		ms[len(ms)-1] = controlPlane("cp-new")
		ns[len(ns)-1] = ready("cp-new", v1alpha1.ControlPlanePool)
		return ms, ns
	}
	ums, uns := upgraded()

	tests := []testCase{
		{
			name:     "one edit of the version: the control plane first, the workers wait for it",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}),
			machines: ms, nodes: ns, self: "cp",
			want: []string{"ReplaceControlPlane control-plane/cp", "Blocked workers"},
			reasons: []string{
				"ReplaceControlPlane control-plane/cp: control-plane machine cp is outdated (Kubernetes v1.33.4, pool control-plane wants v1.34.2)",
				"Blocked pool workers: pool workers: Kubernetes v1.34.2 waits for the control plane, whose oldest machine runs v1.33.4",
			},
		},
		{
			name:     "a new machine type replaces the control plane too",
			cluster:  cluster(nil, func(s *v1alpha1.ClusterSpec) { s.ControlPlane.MachineType = "large" }),
			machines: []providers.Machine{with(controlPlane("cp"), func(m *providers.Machine) { m.MachineType = "small" })},
			nodes:    []Node{ready("cp", v1alpha1.ControlPlanePool)}, self: "cp",
			want:    []string{"ReplaceControlPlane control-plane/cp"},
			reasons: []string{"machine type small, pool control-plane wants large"},
		},
		{
			name:     "while the replacement runs, nothing else is planned for the control plane and workers still wait",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}),
			machines: withNew, nodes: withNewNodes, self: "cp",
			ops:  []Operation{replacing("cp-new", "cp", StepDrainOld)},
			want: []string{"Blocked workers"},
		},
		{
			name:     "a worker created while the control plane is mixed runs the oldest API server's version",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: withNew, nodes: withNewNodes, self: "cp",
			ops:  []Operation{replacing("cp-new", "cp", StepWaitReady)},
			want: []string{"Create workers", "Blocked workers"},
		},
		{
			name:     "the joining control plane counts before the provider lists it; the old one's Node is not stale",
			cluster:  cluster(nil),
			machines: []providers.Machine{}, nodes: []Node{notReady("cp", v1alpha1.ControlPlanePool, time.Minute)}, self: "cp-new",
			ops:  []Operation{replacing("cp-new", "cp", StepDeleteOldNode)},
			want: []string{},
		},
		{
			name:     "once the control plane is upgraded, workers roll within maxSurge",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}),
			machines: ums, nodes: uns, self: "cp-new",
			want: []string{"Create workers"},
		},
		{
			name:     "the control plane waits for recorded operations to finish",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}),
			machines: ms, nodes: ns, self: "cp",
			ops:     []Operation{deleting("w-1", "workers", StepDrain, time.Minute)},
			want:    []string{"Create workers", "Blocked control-plane/cp", "Blocked workers"},
			reasons: []string{"replaced once the 1 recorded operations are done"},
		},
		{
			name:     "a control plane whose node is not Ready is not replaced",
			cluster:  cluster(nil),
			machines: []providers.Machine{with(controlPlane("cp"), version(v1))},
			nodes:    []Node{notReady("cp", v1alpha1.ControlPlanePool, time.Minute)}, self: "cp",
			want:    []string{"Blocked control-plane/cp"},
			reasons: []string{"not replaced until its node is Ready"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

// Until the old control-plane machine is gone, whatever state the provider
// shows it in while removing it (running, stopped, deleting), no worker is
// created at the new version: the gate never lifts and falls again, which
// would take back a worker just made.
func TestUpgradeGateHoldsUntilTheOldControlPlaneIsGone(t *testing.T) {
	ms, ns := workers("workers", "w", 2)
	for i := range ms {
		ms[i].KubernetesVersion = v1
	}
	ms = append(ms, with(controlPlane("cp"), version(v1)), controlPlane("cp-new"))
	ns = append(ns, ready("cp", v1alpha1.ControlPlanePool), ready("cp-new", v1alpha1.ControlPlanePool))
	for _, state := range []providers.Phase{providers.PhaseRunning, providers.PhaseStopped, providers.PhaseDeleting} {
		ms[2].Phase = state
		tc := testCase{
			name:     "old control plane " + string(state),
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}),
			machines: ms, nodes: ns, self: "cp-new",
			ops:  []Operation{replacing("cp-new", "cp", StepDeleteOldMachine)},
			want: []string{"Blocked workers"},
		}
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
	gone := testCase{
		name:     "old control plane gone",
		cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}),
		machines: append(ms[:2:2], ms[3]), nodes: ns, self: "cp-new",
		ops:  []Operation{replacing("cp-new", "cp", StepDeleteOldNode)},
		want: []string{"Create workers"},
	}
	t.Run(gone.name, func(t *testing.T) { gone.run(t) })
}

// The old control plane may drop out of the provider's list a moment
// before its removal returns: the recorded version holds the gate until the
// deletion is done.
func TestUpgradeGateHoldsWhileTheOldMachineIsUnlisted(t *testing.T) {
	ms, ns := workers("workers", "w", 2)
	for i := range ms {
		ms[i].KubernetesVersion = v1
	}
	ms = append(ms, controlPlane("cp-new"))
	ns = append(ns, ready("cp-new", v1alpha1.ControlPlanePool))
	op := replacing("cp-new", "cp", StepDeleteOldMachine)
	op.ReplacesVersion = v1
	tc := testCase{name: "unlisted", cluster: cluster([]v1alpha1.NodePool{pool("workers", 2)}),
		machines: ms, nodes: ns, self: "cp-new", ops: []Operation{op}, want: []string{"Blocked workers"}}
	tc.run(t)
}
