package plan

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	v1 = "v1.33.4"
	v2 = "v1.34.2" // the cluster's version in these tests
)

// cluster returns a defaulted spec with the given pools; opts adjust it
// before defaulting.
func cluster(pools []v1alpha1.NodePool, opts ...func(*v1alpha1.ClusterSpec)) *v1alpha1.Cluster {
	c := &v1alpha1.Cluster{Metadata: v1alpha1.ObjectMeta{Name: "test"}}
	c.Spec.KubernetesVersion = v2
	c.Spec.NodePools = pools
	for _, o := range opts {
		o(&c.Spec)
	}
	v1alpha1.SetDefaults(c)
	return c
}

func pool(name string, replicas int32) v1alpha1.NodePool {
	return v1alpha1.NodePool{Name: name, Replicas: replicas}
}

func rollout(surge, unavailable int32) func(*v1alpha1.ClusterSpec) {
	return func(s *v1alpha1.ClusterSpec) {
		s.Rollout.MaxSurge, s.Rollout.MaxUnavailable = &surge, &unavailable
	}
}

func maxUnhealthy(v *v1alpha1.IntOrPercent) func(*v1alpha1.ClusterSpec) {
	return func(s *v1alpha1.ClusterSpec) { s.Health.MaxUnhealthy = v }
}

// machine is a running worker of pool created age ago at version v2.
func machine(name, pool string, age time.Duration) providers.Machine {
	return providers.Machine{Name: name, Pool: pool, Role: providers.RoleWorker, KubernetesVersion: v2,
		Phase: providers.PhaseRunning, CreatedAt: now.Add(-age)}
}

func with(m providers.Machine, f func(*providers.Machine)) providers.Machine { f(&m); return m }

func phase(p providers.Phase) func(*providers.Machine) {
	return func(m *providers.Machine) { m.Phase = p }
}

func version(v string) func(*providers.Machine) {
	return func(m *providers.Machine) { m.KubernetesVersion = v }
}

func controlPlane(name string) providers.Machine {
	return providers.Machine{Name: name, Pool: v1alpha1.ControlPlanePool, Role: providers.RoleControlPlane,
		KubernetesVersion: v2, Phase: providers.PhaseRunning, CreatedAt: now.Add(-24 * time.Hour)}
}

func ready(name, pool string) Node {
	return Node{Name: name, Pool: pool, Ready: true, ReadyTransition: now.Add(-time.Hour)}
}

func notReady(name, pool string, since time.Duration) Node {
	return Node{Name: name, Pool: pool, ReadyTransition: now.Add(-since)}
}

// unreachable is a Node whose kubelet stopped reporting, since ago.
func unreachable(name, pool string, since time.Duration) Node {
	n := notReady(name, pool, since)
	n.Unreachable = true
	return n
}

func cordoned(name, pool string) Node {
	n := ready(name, pool)
	n.Unschedulable = true
	return n
}

// brief renders an action as "Type pool/machine" for comparison.
func brief(a Action) string {
	switch {
	case a.Machine == "":
		return string(a.Type) + " " + a.Pool
	case a.Pool == "":
		return string(a.Type) + " " + a.Machine
	}
	return string(a.Type) + " " + a.Pool + "/" + a.Machine
}

func briefs(p Plan) []string {
	out := make([]string, len(p.Actions))
	for i, a := range p.Actions {
		out[i] = brief(a)
	}
	return out
}

// workers is n ready, updated machines of pool named prefix-1..n, created
// 1h, 2h, ... ago.
func workers(poolName, prefix string, n int) ([]providers.Machine, []Node) {
	var ms []providers.Machine
	var ns []Node
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		ms = append(ms, machine(name, poolName, time.Duration(i)*time.Hour))
		ns = append(ns, ready(name, poolName))
	}
	return ms, ns
}

func concat[T any](ss ...[]T) []T { return slices.Concat(ss...) }

type testCase struct {
	name     string
	cluster  *v1alpha1.Cluster
	machines []providers.Machine
	nodes    []Node
	self     string
	grace    time.Duration
	ops      []Operation
	backups  BackupInput
	// want is every action, briefly, in order.
	want []string
	// reasons must each appear in some line of the plan's Summary.
	reasons []string
	// conditions are the plan's condition types, in order.
	conditions []ConditionType
}

func (tc testCase) run(t *testing.T) Plan {
	t.Helper()
	in := Input{Cluster: tc.cluster, Machines: tc.machines, Nodes: tc.nodes, Self: tc.self, Now: now,
		OrphanGracePeriod: tc.grace, Operations: tc.ops, Backups: tc.backups}
	got := Compute(in)
	if !slices.Equal(briefs(got), tc.want) {
		t.Errorf("actions:\n got %q\nwant %q\nsummary:\n  %s", briefs(got), tc.want, strings.Join(got.Summary(), "\n  "))
	}
	summary := got.Summary()
	for _, r := range tc.reasons {
		if !slices.ContainsFunc(summary, func(l string) bool { return strings.Contains(l, r) }) {
			t.Errorf("no summary line contains %q:\n  %s", r, strings.Join(summary, "\n  "))
		}
	}
	for _, a := range got.Actions {
		if a.Reason == "" {
			t.Errorf("action %s has no reason", brief(a))
		}
	}
	var conds []ConditionType
	for _, c := range got.Conditions {
		conds = append(conds, c.Type)
	}
	if !slices.Equal(conds, tc.conditions) {
		t.Errorf("conditions: got %v, want %v", conds, tc.conditions)
	}
	// The same input in another order gives the same plan.
	rev := in
	rev.Machines, rev.Nodes, rev.Operations = slices.Clone(in.Machines), slices.Clone(in.Nodes), slices.Clone(in.Operations)
	rev.Backups.Records = slices.Clone(in.Backups.Records)
	slices.Reverse(rev.Backups.Records)
	slices.Reverse(rev.Machines)
	slices.Reverse(rev.Nodes)
	slices.Reverse(rev.Operations)
	if again := Compute(rev); !reflect.DeepEqual(again, got) {
		t.Errorf("plan depends on input order:\n%q\n%q", again.Summary(), got.Summary())
	}
	return got
}

func TestScaling(t *testing.T) {
	w3, n3 := workers("workers", "w", 3)
	w5, n5 := workers("workers", "w", 5)
	cp := controlPlane("cp")
	cpNode := ready("cp", v1alpha1.ControlPlanePool)
	tests := []testCase{
		{
			name:     "steady state does nothing",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: concat(w3, []providers.Machine{cp}), nodes: concat(n3, []Node{cpNode}), self: "cp",
			want: []string{},
		},
		{
			name:     "an outdated control plane is replaced; workers already at the version stay",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: concat(w3, []providers.Machine{with(controlPlane("cp-old"), version(v1))}),
			nodes:    concat(n3, []Node{ready("cp-old", v1alpha1.ControlPlanePool)}),
			want:     []string{"ReplaceControlPlane control-plane/cp-old"},
		},
		{
			name:     "no control-plane machine at all: none is created",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: w3, nodes: n3,
			want: []string{},
		},
		{
			name:     "missing replicas are created",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: w3[:1], nodes: n3[:1],
			want:    []string{"Create workers", "Create workers"},
			reasons: []string{"Create pool workers: pool workers has 1 of 3 replicas"},
		},
		{
			name:    "pending machines count, deleting machines do not",
			cluster: cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: []providers.Machine{
				machine("w-1", "workers", time.Hour),
				with(machine("w-2", "workers", time.Minute), phase(providers.PhasePending)),
				with(machine("w-3", "workers", time.Hour), phase(providers.PhaseDeleting)),
			},
			nodes:   []Node{ready("w-1", "workers"), notReady("w-3", "workers", time.Hour)},
			want:    []string{"Create workers"},
			reasons: []string{"has 2 of 3 replicas"},
		},
		{
			name:     "several pools, creates ordered by pool name",
			cluster:  cluster([]v1alpha1.NodePool{pool("zeta", 1), pool("alpha", 1)}),
			machines: nil,
			want:     []string{"Create alpha", "Create zeta"},
		},
		{
			name:     "scale down takes the newest first",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: w5, nodes: n5,
			want:    []string{"Delete workers/w-1", "Delete workers/w-2"},
			reasons: []string{"Delete workers/w-1: pool workers has 5 machines, wants 3; chosen: newest"},
		},
		{
			name:     "scale down: unhealthy, then not ready, then cordoned, then newest",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 1)}, maxUnhealthy(v1alpha1.NewCount(0))),
			machines: concat(w5, []providers.Machine{machine("w-6", "workers", 30*time.Hour)}),
			nodes: []Node{
				ready("w-1", "workers"),
				ready("w-2", "workers"),
				cordoned("w-3", "workers"),
				notReady("w-4", "workers", time.Minute),
				notReady("w-5", "workers", time.Hour), // unhealthy, withheld: halted
				ready("w-6", "workers"),
			},
			want: []string{"Delete workers/w-5", "Delete workers/w-4", "Delete workers/w-3",
				"Delete workers/w-1", "Delete workers/w-2"},
			reasons: []string{
				"w-5: pool workers has 6 machines, wants 1; chosen: unhealthy: node NotReady for 1h0m0s (limit 5m0s)",
				"w-4: pool workers has 6 machines, wants 1; chosen: no Ready node",
				"w-3: pool workers has 6 machines, wants 1; chosen: node cordoned",
			},
			conditions: []ConditionType{ConditionRemediationHalted},
		},
		{
			name:    "scale down ties on CreatedAt break by name",
			cluster: cluster([]v1alpha1.NodePool{pool("workers", 1)}),
			machines: []providers.Machine{
				machine("b", "workers", time.Hour), machine("a", "workers", time.Hour), machine("c", "workers", time.Hour),
			},
			nodes: []Node{ready("a", "workers"), ready("b", "workers"), ready("c", "workers")},
			want:  []string{"Delete workers/a", "Delete workers/b"},
		},
		{
			name:     "scale down never takes Self",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 3)}),
			machines: w5, nodes: n5, self: "w-1",
			want: []string{"Delete workers/w-2", "Delete workers/w-3"},
		},
		{
			name:     "scale to zero keeps Self and says so",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 0)}),
			machines: w3, nodes: n3, self: "w-2",
			want:    []string{"Delete workers/w-1", "Delete workers/w-3", "Blocked workers/w-2"},
			reasons: []string{"Blocked workers/w-2: pool workers has 3 machines, wants 0; not deleted: the agent runs on it"},
		},
		{
			name:     "paused: no actions, a condition",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 1)}, func(s *v1alpha1.ClusterSpec) { s.Paused = true }),
			machines: w5, nodes: n5,
			want:       []string{},
			reasons:    []string{"Paused: spec.paused is true"},
			conditions: []ConditionType{ConditionPaused},
		},
		{
			name:     "reserved and repeated pool names are reported",
			cluster:  cluster([]v1alpha1.NodePool{pool("control-plane", 1), pool("a", 0), pool("a", 2)}),
			machines: []providers.Machine{cp}, nodes: []Node{cpNode}, self: "cp",
			want: []string{"Blocked a", "Blocked control-plane"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

func TestHealth(t *testing.T) {
	w5, n5 := workers("workers", "w", 5)
	one := cluster([]v1alpha1.NodePool{pool("workers", 1)}, maxUnhealthy(v1alpha1.NewCount(1)))
	five := cluster([]v1alpha1.NodePool{pool("workers", 5)})
	tests := []testCase{
		{
			name:     "NotReady past the timeout: replaced, replacement created in the same plan",
			cluster:  one,
			machines: []providers.Machine{machine("w-1", "workers", time.Hour)},
			nodes:    []Node{notReady("w-1", "workers", 6*time.Minute)},
			want:     []string{"Create workers", "Delete workers/w-1"},
			reasons: []string{
				"Delete workers/w-1: node NotReady for 6m0s (limit 5m0s)",
				"Create pool workers: pool workers has 0 of 1 replicas (replacing 1 unhealthy)",
			},
		},
		{
			name:     "NotReady within the timeout: left alone",
			cluster:  one,
			machines: []providers.Machine{machine("w-1", "workers", time.Hour)},
			nodes:    []Node{notReady("w-1", "workers", 5*time.Minute)},
			want:     []string{},
		},
		{
			name:     "stopped machine: its NotReady node's timeout applies",
			cluster:  one,
			machines: []providers.Machine{with(machine("w-1", "workers", time.Hour), phase(providers.PhaseStopped))},
			nodes:    []Node{notReady("w-1", "workers", 10*time.Minute)},
			want:     []string{"Create workers", "Delete workers/w-1"},
		},
		{
			name:     "stopped machine whose node still looks Ready: left alone",
			cluster:  one,
			machines: []providers.Machine{with(machine("w-1", "workers", time.Hour), phase(providers.PhaseStopped))},
			nodes:    []Node{ready("w-1", "workers")},
			want:     []string{},
		},
		{
			name:     "no node past the startup timeout",
			cluster:  one,
			machines: []providers.Machine{with(machine("w-1", "workers", 11*time.Minute), phase(providers.PhasePending))},
			want:     []string{"Create workers", "Delete workers/w-1"},
			reasons:  []string{"no node 11m0s after creation (startup limit 10m0s)"},
		},
		{
			name:     "no node yet, within the startup timeout",
			cluster:  one,
			machines: []providers.Machine{machine("w-1", "workers", 9*time.Minute)},
			want:     []string{},
		},
		{
			name:     "unknown age is never a timeout",
			cluster:  one,
			machines: []providers.Machine{with(machine("w-1", "workers", 0), func(m *providers.Machine) { m.CreatedAt = time.Time{} })},
			want:     []string{},
		},
		{
			name:     "Failed phase, even with a Ready node",
			cluster:  one,
			machines: []providers.Machine{with(machine("w-1", "workers", time.Minute), phase(providers.PhaseFailed))},
			nodes:    []Node{ready("w-1", "workers")},
			want:     []string{"Create workers", "Delete workers/w-1"},
			reasons:  []string{"the provider reports the machine Failed"},
		},
		{
			name:     "zero ReadyTransition falls back to CreatedAt",
			cluster:  one,
			machines: []providers.Machine{machine("w-1", "workers", time.Hour)},
			nodes:    []Node{{Name: "w-1", Pool: "workers"}},
			want:     []string{"Create workers", "Delete workers/w-1"},
			reasons:  []string{"node NotReady for 1h0m0s"},
		},
		{
			name:     "deleting machines are not acted on again",
			cluster:  one,
			machines: []providers.Machine{with(machine("w-1", "workers", time.Hour), phase(providers.PhaseDeleting)), machine("w-2", "workers", time.Hour)},
			nodes:    []Node{notReady("w-1", "workers", time.Hour), ready("w-2", "workers")},
			want:     []string{},
		},
		{
			name:     "2 of 5 unhealthy is within 40% (2): remediated",
			cluster:  five,
			machines: w5,
			nodes:    concat(n5[:3], []Node{notReady("w-4", "workers", time.Hour), notReady("w-5", "workers", time.Hour)}),
			want:     []string{"Create workers", "Create workers", "Delete workers/w-4", "Delete workers/w-5"},
		},
		{
			name:     "3 of 5 unhealthy is more than 40% (2): halted, nothing deleted or created",
			cluster:  five,
			machines: w5,
			nodes: concat(n5[:2], []Node{notReady("w-3", "workers", time.Hour),
				notReady("w-4", "workers", time.Hour), notReady("w-5", "workers", time.Hour)}),
			want: []string{"Blocked workers/w-3", "Blocked workers/w-4", "Blocked workers/w-5"},
			reasons: []string{
				"RemediationHalted: remediation halted: 3 of 5 machines unhealthy, more than maxUnhealthy 40% (2)",
				"Blocked workers/w-3: node NotReady for 1h0m0s (limit 5m0s); not replaced: remediation halted",
			},
			conditions: []ConditionType{ConditionRemediationHalted},
		},
		{
			// Stopped together, they go NotReady seconds apart: the first past
			// its timeout must not be replaced while the others follow.
			name:     "1 past its timeout and 2 just unreachable of 5: halted, nothing deleted",
			cluster:  five,
			machines: w5,
			nodes: concat(n5[:2], []Node{unreachable("w-3", "workers", time.Hour),
				unreachable("w-4", "workers", 10*time.Second), unreachable("w-5", "workers", 5*time.Second)}),
			want:       []string{"Blocked workers/w-3"},
			reasons:    []string{"RemediationHalted: remediation halted: 3 of 5 machines unhealthy, more than maxUnhealthy 40% (2)"},
			conditions: []ConditionType{ConditionRemediationHalted},
		},
		{
			// Nodes just joined are NotReady until their pod network is up:
			// starting, not failing.
			name:     "3 of 5 starting (NotReady, reachable): not halted",
			cluster:  five,
			machines: w5,
			nodes: concat(n5[:2], []Node{notReady("w-3", "workers", 2*time.Second),
				notReady("w-4", "workers", 2*time.Second), notReady("w-5", "workers", 2*time.Second)}),
			want: []string{},
		},
		{
			name:    "halted: vanished machines count as unhealthy; missing replicas still created",
			cluster: five,
			// w-3..w-5 were terminated: their nodes linger, NotReady.
			machines: w5[:2],
			nodes: concat(n5[:2], []Node{notReady("w-3", "workers", time.Hour),
				notReady("w-4", "workers", time.Hour), notReady("w-5", "workers", time.Hour)}),
			want: []string{"Create workers", "Create workers", "Create workers",
				"DeleteNode workers/w-3", "DeleteNode workers/w-4", "DeleteNode workers/w-5"},
			reasons:    []string{"remediation halted: 3 of 5 machines unhealthy", "DeleteNode workers/w-3: machine w-3 no longer exists"},
			conditions: []ConditionType{ConditionRemediationHalted},
		},
		{
			name:    "unhealthy count spans pools",
			cluster: cluster([]v1alpha1.NodePool{pool("a", 2), pool("b", 2)}, maxUnhealthy(v1alpha1.NewCount(1))),
			machines: []providers.Machine{machine("a-1", "a", time.Hour), machine("a-2", "a", time.Hour),
				machine("b-1", "b", time.Hour), machine("b-2", "b", time.Hour)},
			nodes: []Node{notReady("a-1", "a", time.Hour), ready("a-2", "a"),
				notReady("b-1", "b", time.Hour), ready("b-2", "b")},
			want:       []string{"Blocked a/a-1", "Blocked b/b-1"},
			reasons:    []string{"2 of 4 machines unhealthy, more than maxUnhealthy 1 (1)"},
			conditions: []ConditionType{ConditionRemediationHalted},
		},
		{
			name:     "unhealthy Self is not replaced",
			cluster:  one,
			machines: []providers.Machine{machine("w-1", "workers", time.Hour)},
			nodes:    []Node{notReady("w-1", "workers", time.Hour)},
			self:     "w-1",
			want:     []string{"Blocked workers/w-1"},
			reasons:  []string{"node NotReady for 1h0m0s (limit 5m0s); not replaced: the agent runs on it"},
		},
		{
			name:     "unhealthy control plane is reported, never replaced",
			cluster:  one,
			machines: []providers.Machine{controlPlane("cp"), machine("w-1", "workers", time.Hour)},
			nodes:    []Node{notReady("cp", v1alpha1.ControlPlanePool, 7*time.Minute), ready("w-1", "workers")},
			self:     "cp",
			want:     []string{"Blocked control-plane/cp"},
			reasons:  []string{"control-plane machine cp: node NotReady for 7m0s (limit 5m0s); not remediated: the agent runs on it"},
		},
		{
			name:     "control plane without a pool label is still the control plane",
			cluster:  one,
			machines: []providers.Machine{with(controlPlane("cp"), func(m *providers.Machine) { m.Pool = "" }), machine("w-1", "workers", time.Hour)},
			nodes:    []Node{ready("cp", ""), ready("w-1", "workers")},
			self:     "cp",
			grace:    time.Minute,
			want:     []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

func TestStaleNodes(t *testing.T) {
	c := cluster([]v1alpha1.NodePool{pool("workers", 1)})
	w := machine("w-1", "workers", time.Hour)
	tests := []testCase{
		{
			name:     "NotReady node whose machine is gone is deleted",
			cluster:  c,
			machines: []providers.Machine{w},
			nodes:    []Node{ready("w-1", "workers"), notReady("w-9", "workers", time.Minute)},
			want:     []string{"DeleteNode workers/w-9"},
		},
		{
			name:     "Ready node whose machine is gone is suspicious",
			cluster:  c,
			machines: []providers.Machine{w},
			nodes:    []Node{ready("w-1", "workers"), ready("w-9", "workers")},
			want:     []string{"Blocked workers/w-9"},
			reasons:  []string{"node w-9 is Ready but the provider does not list its machine"},
		},
		{
			name:     "node of a machine being deleted is not stale",
			cluster:  c,
			machines: []providers.Machine{w, with(machine("w-9", "workers", time.Hour), phase(providers.PhaseDeleting))},
			nodes:    []Node{ready("w-1", "workers"), notReady("w-9", "workers", time.Hour)},
			want:     []string{},
		},
		{
			name:     "nodes without a pool label are not Seed's",
			cluster:  c,
			machines: []providers.Machine{w},
			nodes:    []Node{ready("w-1", "workers"), notReady("byo", "", time.Hour)},
			want:     []string{},
		},
		{
			name:     "control-plane and Self nodes are never deleted",
			cluster:  c,
			machines: []providers.Machine{w},
			nodes:    []Node{ready("w-1", "workers"), notReady("cp", v1alpha1.ControlPlanePool, time.Hour), notReady("me", "workers", time.Hour)},
			self:     "me",
			want:     []string{"Blocked control-plane/cp", "Blocked workers/me"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

func TestRemovedPoolsAndOrphans(t *testing.T) {
	c := cluster([]v1alpha1.NodePool{pool("workers", 1)})
	w := machine("w-1", "workers", time.Hour)
	wn := ready("w-1", "workers")
	tests := []testCase{
		{
			name:    "removed pool: every machine deleted, newest first, Self kept",
			cluster: c,
			machines: []providers.Machine{w, machine("old-1", "old", 3*time.Hour), machine("old-2", "old", time.Hour),
				machine("old-3", "old", 2*time.Hour), machine("old-4", "old", time.Minute)},
			nodes: []Node{wn, ready("old-1", "old"), ready("old-2", "old"), notReady("old-3", "old", time.Hour)},
			self:  "old-4",
			want:  []string{"Delete old/old-2", "Delete old/old-3", "Delete old/old-1", "Blocked old/old-4"},
			reasons: []string{
				"Delete old/old-2: pool old was removed from the spec",
				"Blocked old/old-4: pool old was removed from the spec; not deleted: the agent runs on it",
			},
		},
		{
			name:    "orphans are deleted only after the grace period",
			cluster: c,
			machines: []providers.Machine{w,
				{Name: "x-old", Phase: providers.PhaseRunning, CreatedAt: now.Add(-11 * time.Minute)},
				{Name: "x-new", Phase: providers.PhasePending, CreatedAt: now.Add(-9 * time.Minute)},
				{Name: "x-foreign", Pool: "gpu", Phase: providers.PhaseRunning, CreatedAt: now.Add(-time.Hour)},
				{Name: "x-unknown-age", Phase: providers.PhaseRunning},
			},
			nodes: []Node{wn},
			grace: 10 * time.Minute,
			want:  []string{"Delete x-old", "Delete gpu/x-foreign"},
			reasons: []string{
				"Delete x-old: orphan: machine has no pool, created 11m0s ago (grace period 10m0s)",
				`orphan: machine has pool "gpu", which is not in the spec, and role ""`,
			},
		},
		{
			name:     "orphan Self is kept",
			cluster:  c,
			machines: []providers.Machine{w, {Name: "me", Phase: providers.PhaseRunning, CreatedAt: now.Add(-time.Hour)}},
			nodes:    []Node{wn},
			self:     "me",
			want:     []string{"Blocked me"},
		},
		{
			name:     "a machine listed twice counts once",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 2)}),
			machines: []providers.Machine{w, w},
			nodes:    []Node{wn, wn},
			want:     []string{"Create workers"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

func TestRollout(t *testing.T) {
	pools := []v1alpha1.NodePool{pool("workers", 3)}
	old := func(names ...string) []providers.Machine {
		var out []providers.Machine
		for i, n := range names {
			out = append(out, with(machine(n, "workers", time.Duration(10-i)*time.Hour), version(v1)))
		}
		return out
	}
	cur := func(names ...string) []providers.Machine {
		var out []providers.Machine
		for i, n := range names {
			out = append(out, machine(n, "workers", time.Duration(5-i)*time.Minute))
		}
		return out
	}
	readyNodes := func(names ...string) []Node {
		var out []Node
		for _, n := range names {
			out = append(out, ready(n, "workers"))
		}
		return out
	}
	tests := []testCase{
		{
			name:     "surge 1: create one updated machine first",
			cluster:  cluster(pools, rollout(1, 0)),
			machines: old("o1", "o2", "o3"), nodes: readyNodes("o1", "o2", "o3"),
			want:    []string{"Create workers"},
			reasons: []string{"pool workers rolling out: 0 of 3 replicas updated (maxSurge 1, maxUnavailable 0)"},
		},
		{
			name:     "surge 1: wait while the updated machine is not Ready",
			cluster:  cluster(pools, rollout(1, 0)),
			machines: concat(old("o1", "o2", "o3"), cur("n1")), nodes: readyNodes("o1", "o2", "o3"),
			want: []string{},
		},
		{
			name:     "surge 1: updated machine Ready, delete one outdated and surge again",
			cluster:  cluster(pools, rollout(1, 0)),
			machines: concat(old("o1", "o2", "o3"), cur("n1")), nodes: readyNodes("o1", "o2", "o3", "n1"),
			// o3 is the newest outdated machine.
			want:    []string{"Create workers", "Delete workers/o3"},
			reasons: []string{"Delete workers/o3: outdated: Kubernetes v1.33.4, pool workers wants v1.34.2; rolling replacement, 4 available, minAvailable 3"},
		},
		{
			name:    "surge 1: a cordoned (draining) outdated machine stays the victim on the next pass",
			cluster: cluster(pools, rollout(1, 0)),
			// o3 was chosen last pass and is being drained; n2 is starting.
			machines: concat(old("o1", "o2", "o3"), cur("n1", "n2")),
			nodes:    concat(readyNodes("o1", "o2", "n1"), []Node{cordoned("o3", "workers")}),
			want:     []string{"Delete workers/o3"},
		},
		{
			name:     "maxUnavailable 1, no surge: delete first, create in the same plan",
			cluster:  cluster(pools, rollout(0, 1)),
			machines: old("o1", "o2", "o3"), nodes: readyNodes("o1", "o2", "o3"),
			want: []string{"Create workers", "Delete workers/o3"},
		},
		{
			name:     "maxUnavailable 1: no further deletion while the new machine starts",
			cluster:  cluster(pools, rollout(0, 1)),
			machines: concat(old("o1", "o2"), cur("n1")), nodes: readyNodes("o1", "o2"),
			want: []string{},
		},
		{
			name:     "outdated machines without a Ready node go first",
			cluster:  cluster(pools, rollout(1, 0)),
			machines: concat(old("o1", "o2", "o3"), cur("n1")),
			nodes:    concat(readyNodes("o1", "o3", "n1"), []Node{notReady("o2", "workers", time.Minute)}),
			want:     []string{"Create workers", "Delete workers/o2"},
			reasons:  []string{"rolling replacement, no Ready node"},
		},
		{
			name:     "machine type drift rolls too; unknown type never does",
			cluster:  cluster([]v1alpha1.NodePool{{Name: "workers", Replicas: 2, MachineType: "m5.large"}}, rollout(1, 0)),
			machines: []providers.Machine{with(machine("a", "workers", time.Hour), func(m *providers.Machine) { m.MachineType = "m5.small" }), machine("b", "workers", time.Hour)},
			nodes:    readyNodes("a", "b"),
			want:     []string{"Create workers"},
			reasons:  []string{"rolling out: 1 of 2 replicas updated"},
		},
		{
			name:     "empty pool machine type is the provider's default, not drift",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 1)}),
			machines: []providers.Machine{with(machine("a", "workers", time.Hour), func(m *providers.Machine) { m.MachineType = "t3.medium" })},
			nodes:    readyNodes("a"),
			want:     []string{},
		},
		{
			name:     "kubelet version is used when the machine does not say",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 1)}),
			machines: []providers.Machine{with(machine("a", "workers", time.Hour), version(""))},
			nodes:    []Node{{Name: "a", Pool: "workers", Ready: true, KubeletVersion: v1}},
			want:     []string{"Create workers"},
		},
		{
			name:     "finishing: surplus outdated machine goes once updated ones are Ready",
			cluster:  cluster(pools, rollout(1, 0)),
			machines: concat(old("o1"), cur("n1", "n2", "n3")), nodes: readyNodes("o1", "n1", "n2", "n3"),
			want: []string{"Delete workers/o1"},
		},
		{
			name:     "scaled down mid-rollout",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 1)}, rollout(1, 0)),
			machines: concat(old("o1", "o2"), cur("n1", "n2")), nodes: readyNodes("o1", "o2", "n1", "n2"),
			// n2 is the newer updated machine; both outdated machines can go.
			want: []string{"Delete workers/n2", "Delete workers/o2", "Delete workers/o1"},
		},
		{
			name:     "scaled up mid-rollout",
			cluster:  cluster([]v1alpha1.NodePool{pool("workers", 4)}, rollout(1, 0)),
			machines: old("o1", "o2"), nodes: readyNodes("o1", "o2"),
			want: []string{"Create workers", "Create workers", "Create workers"},
		},
		{
			name:     "maxSurge and maxUnavailable both 0: stuck, and said so",
			cluster:  cluster(pools, rollout(0, 0)),
			machines: old("o1", "o2", "o3"), nodes: readyNodes("o1", "o2", "o3"),
			want:    []string{"Blocked workers"},
			reasons: []string{"rollout of pool workers cannot progress: maxSurge and maxUnavailable are both 0"},
		},
		{
			name:     "outdated Self is not rolled and the pool settles",
			cluster:  cluster(pools, rollout(1, 0)),
			machines: concat(old("o1"), cur("n1", "n2")), nodes: readyNodes("o1", "n1", "n2"),
			self:    "o1",
			want:    []string{"Blocked workers/o1"},
			reasons: []string{"outdated: Kubernetes v1.33.4, pool workers wants v1.34.2; not replaced: the agent runs on it"},
		},
		{
			name:     "halted: unhealthy outdated machines are not rolled away",
			cluster:  cluster(pools, rollout(1, 1), maxUnhealthy(v1alpha1.NewCount(0))),
			machines: concat(old("o1", "o2", "o3"), cur("n1")),
			nodes:    concat(readyNodes("o1", "o2", "n1"), []Node{notReady("o3", "workers", time.Hour)}),
			// minAvailable 2, 3 ready: one Ready outdated machine may go.
			want:       []string{"Create workers", "Delete workers/o2", "Blocked workers/o3"},
			conditions: []ConditionType{ConditionRemediationHalted},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

func TestCreateSpec(t *testing.T) {
	c := cluster([]v1alpha1.NodePool{{Name: "gpu", Replicas: 1, MachineType: "g5.xlarge", KubernetesVersion: v1}})
	got := Compute(Input{Cluster: c, Now: now})
	want := []Action{{Type: Create, Pool: "gpu", Reason: "pool gpu has 0 of 1 replicas", Create: &providers.MachineSpec{
		Pool: "gpu", Role: providers.RoleWorker, MachineType: "g5.xlarge", KubernetesVersion: v1,
	}}}
	if !reflect.DeepEqual(got.Actions, want) {
		t.Errorf("got %+v, want %+v", got.Actions, want)
	}
}

func TestPoolStatus(t *testing.T) {
	c := cluster([]v1alpha1.NodePool{pool("workers", 3), pool("empty", 2)}, func(s *v1alpha1.ClusterSpec) { s.Paused = true })
	got := Compute(Input{Cluster: c, Now: now, Self: "cp",
		Machines: []providers.Machine{
			controlPlane("cp"),
			machine("w-1", "workers", time.Hour),
			with(machine("w-2", "workers", time.Hour), version(v1)),
			with(machine("w-3", "workers", time.Hour), phase(providers.PhaseFailed)),
			with(machine("w-4", "workers", time.Hour), phase(providers.PhaseDeleting)),
			machine("old-1", "old", time.Hour),
		},
		Nodes: []Node{ready("cp", "control-plane"), ready("w-1", "workers"), ready("w-2", "workers"), ready("w-3", "workers")},
	})
	want := []PoolStatus{
		{Name: "control-plane", Desired: 1, Current: 1, Ready: 1, Updated: 1},
		{Name: "workers", Desired: 3, Current: 3, Ready: 2, Updated: 2, Unhealthy: 1},
		{Name: "empty", Desired: 2},
		{Name: "old", Desired: 0, Current: 1, Updated: 1, Unhealthy: 1},
	}
	if !reflect.DeepEqual(got.Pools, want) {
		t.Errorf("pools:\n got %+v\nwant %+v", got.Pools, want)
	}
	if len(got.Actions) != 0 {
		t.Errorf("paused plan has actions: %q", got.Summary())
	}
}

// The agent writes PoolStatus into its status as is; keep the two convertible.
var _ = v1alpha1.PoolStatus(PoolStatus{})

func TestSummary(t *testing.T) {
	p := Plan{
		Actions: []Action{
			{Type: Create, Pool: "a", Reason: "r1"},
			{Type: Delete, Pool: "a", Machine: "m", Reason: "r2"},
			{Type: Delete, Machine: "orphan", Reason: "r3"},
			{Type: Blocked, Pool: "a", Reason: "r4"},
		},
		Conditions: []Condition{{Type: ConditionPaused, Message: "r5"}},
	}
	want := []string{"Create pool a: r1", "Delete a/m: r2", "Delete orphan: r3", "Blocked pool a: r4", "Paused: r5"}
	if got := p.Summary(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The ledger holds every creation until its provider call returns, in one
// object: a scale-up of thousands is made MaxCreationsInFlight at a time.
func TestCreationsInFlightAreBounded(t *testing.T) {
	cp := controlPlane("cp")
	recorded := func(n int) []Operation {
		var ops []Operation
		for i := range n {
			ops = append(ops, Operation{Type: OpCreate, Machine: fmt.Sprintf("a-%05d", i), Step: StepCreate, Pool: "a", RecordedAt: now,
				Spec: providers.MachineSpec{Name: fmt.Sprintf("a-%05d", i), Pool: "a", Role: providers.RoleWorker}})
		}
		return ops
	}
	for _, c := range []struct {
		name        string
		replicas    [2]int32
		inFlight    int
		wantCreates map[string]int
		wantBlocked map[string]string
	}{
		{"within the bound: all at once", [2]int32{400, 500}, 0, map[string]int{"a": 400, "b": 500}, nil},
		{"past it: the first pools first, the rest wait", [2]int32{700, 800}, 0, map[string]int{"a": 700, "b": 300},
			map[string]string{"b": "500 more machines wait: at most 1000 creations are in flight"}},
		{"recorded creations take room", [2]int32{1200, 0}, 600, map[string]int{"a": 400},
			map[string]string{"a": "200 more machines wait: at most 1000 creations are in flight"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ops := recorded(c.inFlight)
			var machines []providers.Machine
			for _, op := range ops {
				machines = append(machines, providers.Machine{Name: op.Machine, Pool: "a", Role: providers.RoleWorker, Phase: providers.PhasePending, CreatedAt: now})
			}
			got := Compute(Input{Cluster: cluster([]v1alpha1.NodePool{pool("a", c.replicas[0]), pool("b", c.replicas[1])}),
				Machines: append(machines, cp), Nodes: []Node{ready("cp", v1alpha1.ControlPlanePool)}, Self: "cp", Now: now, Operations: ops})
			creates, blocked := map[string]int{}, map[string]string{}
			for _, a := range got.Actions {
				switch a.Type {
				case Create:
					creates[a.Pool]++
				case Blocked:
					blocked[a.Pool] = a.Reason
				}
			}
			if !maps.Equal(creates, c.wantCreates) {
				t.Errorf("creates by pool = %v, want %v", creates, c.wantCreates)
			}
			for pool, want := range c.wantBlocked {
				if !strings.Contains(blocked[pool], want) {
					t.Errorf("pool %s blocked: %q, want it to say %q", pool, blocked[pool], want)
				}
			}
			if len(blocked) != len(c.wantBlocked) {
				t.Errorf("blocked = %v, want %v", blocked, c.wantBlocked)
			}
			if got.Converged {
				t.Error("converged with machines still to create")
			}
		})
	}
}
