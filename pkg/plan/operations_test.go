package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

func creating(name, pool string, ago time.Duration) Operation {
	return Operation{Type: OpCreate, Machine: name, Pool: pool, Step: StepCreate, RecordedAt: now.Add(-ago),
		Spec: providers.MachineSpec{Name: name, Pool: pool, Role: providers.RoleWorker, KubernetesVersion: v2}}
}

func deleting(name, pool string, step Step, drainingFor time.Duration) Operation {
	op := Operation{Type: OpDelete, Machine: name, Pool: pool, Step: step, RecordedAt: now.Add(-drainingFor)}
	if step == StepDrain {
		op.DrainStartedAt = now.Add(-drainingFor)
	}
	return op
}

func drainTimeout(d time.Duration) func(*v1alpha1.ClusterSpec) {
	return func(s *v1alpha1.ClusterSpec) { s.Rollout.DrainTimeout = v1alpha1.NewDuration(d) }
}

func TestOperations(t *testing.T) {
	w3, n3 := workers("workers", "w", 3)
	cp := controlPlane("cp")
	cpNode := ready("cp", v1alpha1.ControlPlanePool)
	tests := []testCase{
		{
			name:     "a creation the provider does not list yet counts as a pending machine",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 4)}),
			machines: w3, nodes: n3,
			ops:  []Operation{creating("w-4", "workers", time.Minute)},
			want: []string{},
		},
		{
			name:     "a creation never listed within nodeStartupTimeout is given up and replaced",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 4)}),
			machines: w3, nodes: n3,
			ops:     []Operation{creating("w-4", "workers", 11*time.Minute)},
			want:    []string{"GiveUp workers/w-4", "Create workers"},
			reasons: []string{"has not listed machine w-4 11m0s after it was asked for (nodeStartupTimeout 10m0s)"},
		},
		{
			name:     "a listed machine still being created is neither pending twice nor given up",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: w3, nodes: n3,
			ops:  []Operation{creating("w-3", "workers", time.Hour)},
			want: []string{},
		},
		{
			name:     "a machine being deleted is not counted, so its replacement is planned",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: w3, nodes: n3,
			ops:  []Operation{deleting("w-1", "workers", StepDrain, time.Minute)},
			want: []string{"Create workers"},
		},
		{
			name:     "the Node of a machine being deleted is the deletion's, not stale",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}),
			machines: w3[:2], nodes: n3,
			ops:  []Operation{deleting("w-3", "workers", StepDeleteNode, time.Minute)},
			want: []string{},
		},
		{
			name:     "a drain past drainTimeout is skipped: the machine goes with its pods",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, drainTimeout(5*time.Minute)),
			machines: w3, nodes: n3,
			ops:     []Operation{deleting("w-1", "workers", StepDrain, 6*time.Minute)},
			want:    []string{"SkipDrain workers/w-1"},
			reasons: []string{"drain of machine w-1 has run 6m0s, past drainTimeout 5m0s; deleting it anyway"},
		},
		{
			name:     "a drain within drainTimeout goes on",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, drainTimeout(5*time.Minute)),
			machines: w3, nodes: n3,
			ops:  []Operation{deleting("w-1", "workers", StepDrain, 4*time.Minute)},
			want: []string{},
		},
		{
			name:     "a drain already past its drain step is not skipped again",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}, drainTimeout(5*time.Minute)),
			machines: w3, nodes: n3,
			ops:  []Operation{deleting("w-1", "workers", StepDeleteMachine, time.Hour)},
			want: []string{},
		},
		{
			name:     "a recorded deletion of the agent's own machine is cancelled, never carried out",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: concat(w3, []providers.Machine{cp}), nodes: concat(n3, []Node{cpNode}), self: "cp",
			ops:     []Operation{deleting("cp", v1alpha1.ControlPlanePool, StepDrain, time.Minute)},
			want:    []string{"Cancel control-plane/cp"},
			reasons: []string{"names machine cp, which the agent runs on; not deleted"},
		},
		{
			name:     "a machine still being created can be chosen for deletion",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: w3, nodes: n3,
			ops:     []Operation{creating("w-4", "workers", time.Minute)},
			want:    []string{"Delete workers/w-4"},
			reasons: []string{"no Ready node"},
		},
		{
			name:     "paused: recorded work waits, nothing is given up",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 4)}, func(s *v1alpha1.ClusterSpec) { s.Paused = true }),
			machines: w3, nodes: n3,
			ops:        []Operation{creating("w-4", "workers", time.Hour)},
			want:       []string{},
			conditions: []ConditionType{ConditionPaused},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

func TestConverged(t *testing.T) {
	w3, n3 := workers("workers", "w", 3)
	cp := controlPlane("cp")
	cpNode := ready("cp", v1alpha1.ControlPlanePool)
	base := Input{Cluster: cluster([]v1alpha1.NodePool{pool("workers", 3)}), Machines: concat(w3, []providers.Machine{cp}),
		Nodes: concat(n3, []Node{cpNode}), Self: "cp", Now: now}
	tests := []struct {
		name string
		in   func(Input) Input
		want bool
	}{
		{"every pool at its count, Ready and updated", func(in Input) Input { return in }, true},
		{"recorded work under way", func(in Input) Input {
			in.Operations = []Operation{deleting("gone", "workers", StepDeleteNode, time.Minute)}
			return in
		}, false},
		{"a machine missing", func(in Input) Input { in.Machines = in.Machines[1:]; return in }, false},
		{"a node not Ready", func(in Input) Input {
			in.Nodes = concat([]Node{notReady("w-1", "workers", time.Second)}, in.Nodes[1:])
			return in
		}, false},
		{"only a blocked action", func(in Input) Input {
			in.Nodes = concat(in.Nodes[:3], []Node{notReady("cp", v1alpha1.ControlPlanePool, time.Hour)})
			return in
		}, false}, // the control plane is not Ready, so its pool is not converged either
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Compute(tc.in(base)).Converged; got != tc.want {
				t.Errorf("Converged = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUndefaultedSpecIsReportedNotPlanned(t *testing.T) {
	c := cluster([]v1alpha1.NodePool{pool("workers", 3)})
	c.Spec.Rollout.DrainTimeout = nil
	p := Compute(Input{Cluster: c, Now: now})
	if len(p.Actions) != 1 || p.Actions[0].Type != Blocked {
		t.Fatalf("actions: got %q, want one Blocked", p.Summary())
	}
	if want := "spec.rollout.drainTimeout is not set"; !contains(p.Actions[0].Reason, want) {
		t.Errorf("reason %q does not say %q", p.Actions[0].Reason, want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
