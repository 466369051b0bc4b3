package plan

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// sim is a toy cluster that carries plans out, so that tests can watch what
// repeated passes do over time.
type sim struct {
	now      time.Time
	machines map[string]providers.Machine
	nodes    map[string]Node
	// joins says whether new machines ever become Ready nodes.
	joins   bool
	created int
	counts  map[ActionType]int
	halted  int // passes with RemediationHalted
}

func newSim(workers int, joins bool) *sim {
	s := &sim{now: now, machines: map[string]providers.Machine{}, nodes: map[string]Node{}, joins: joins,
		counts: map[ActionType]int{}}
	for i := 1; i <= workers; i++ {
		name := fmt.Sprintf("w-%d", i)
		s.machines[name] = machine(name, "workers", time.Hour)
		s.nodes[name] = ready(name, "workers")
	}
	return s
}

// stop makes a machine's node go NotReady now, as a stopped machine does.
func (s *sim) stop(name string) {
	m := s.machines[name]
	m.Phase = providers.PhaseStopped
	s.machines[name] = m
	s.nodes[name] = Node{Name: name, Pool: "workers", ReadyTransition: s.now}
}

// terminate removes a machine behind the agent's back; its node lingers.
func (s *sim) terminate(name string) {
	delete(s.machines, name)
	s.nodes[name] = Node{Name: name, Pool: "workers", ReadyTransition: s.now}
}

func (s *sim) pass(t *testing.T, c *v1alpha1.Cluster) {
	t.Helper()
	in := Input{Cluster: c, Now: s.now, Self: "cp",
		Machines: slices.Collect(maps.Values(s.machines)), Nodes: slices.Collect(maps.Values(s.nodes))}
	p := Compute(in)
	for _, cond := range p.Conditions {
		if cond.Type == ConditionRemediationHalted {
			s.halted++
		}
	}
	for _, a := range p.Actions {
		s.counts[a.Type]++
		switch a.Type {
		case Create:
			s.created++
			name := fmt.Sprintf("new-%d", s.created)
			s.machines[name] = providers.Machine{Name: name, Pool: a.Create.Pool, Role: a.Create.Role,
				KubernetesVersion: a.Create.KubernetesVersion, Phase: providers.PhasePending, CreatedAt: s.now}
		case Delete:
			delete(s.machines, a.Machine)
		case DeleteNode:
			delete(s.nodes, a.Machine)
		}
	}
	s.now = s.now.Add(time.Minute)
	for name, m := range s.machines {
		if _, ok := s.nodes[name]; !ok && s.joins && s.now.Sub(m.CreatedAt) >= 2*time.Minute {
			m.Phase = providers.PhaseRunning
			s.machines[name] = m
			s.nodes[name] = Node{Name: name, Pool: m.Pool, Ready: true, ReadyTransition: s.now}
		}
	}
}

func (s *sim) readyWorkers() int {
	n := 0
	for name := range s.machines {
		if s.nodes[name].Ready {
			n++
		}
	}
	return n
}

func TestNoRunaway(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(*sim)
		joins   bool
		// want after an hour of passes, one a minute.
		creates, deletes, deleteNodes int
		haltedPasses                  bool
		machines, ready               int
	}{
		{
			name:    "one stopped worker is replaced once",
			breakIt: func(s *sim) { s.stop("w-1") },
			// The deleted machine's node lingers until the next pass removes it.
			joins: true, creates: 1, deletes: 1, deleteNodes: 1, machines: 5, ready: 5,
		},
		{
			name:    "60% of workers stopped: nothing is created or deleted",
			breakIt: func(s *sim) { s.stop("w-1"); s.stop("w-2"); s.stop("w-3") },
			joins:   true, haltedPasses: true, machines: 5, ready: 2,
		},
		{
			name:    "60% of workers terminated and new machines cannot join: three creates, then halt",
			breakIt: func(s *sim) { s.terminate("w-1"); s.terminate("w-2"); s.terminate("w-3") },
			joins:   false, creates: 3, deleteNodes: 3, haltedPasses: true, machines: 5, ready: 2,
		},
		{
			name:    "60% of workers terminated, new machines join: healed",
			breakIt: func(s *sim) { s.terminate("w-1"); s.terminate("w-2"); s.terminate("w-3") },
			joins:   true, creates: 3, deleteNodes: 3, haltedPasses: true, machines: 5, ready: 5,
		},
	}
	c := cluster([]v1alpha1.NodePool{pool("workers", 5)})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(5, tc.joins)
			tc.breakIt(s)
			for range 60 {
				s.pass(t, c)
			}
			if s.counts[Create] != tc.creates || s.counts[Delete] != tc.deletes || s.counts[DeleteNode] != tc.deleteNodes {
				t.Errorf("creates/deletes/deleteNodes = %d/%d/%d, want %d/%d/%d", s.counts[Create], s.counts[Delete],
					s.counts[DeleteNode], tc.creates, tc.deletes, tc.deleteNodes)
			}
			if (s.halted > 0) != tc.haltedPasses {
				t.Errorf("halted in %d passes, want halted: %v", s.halted, tc.haltedPasses)
			}
			if len(s.machines) != tc.machines || s.readyWorkers() != tc.ready {
				t.Errorf("machines/ready = %d/%d, want %d/%d", len(s.machines), s.readyWorkers(), tc.machines, tc.ready)
			}
		})
	}
}

// TestRolloutConverges rolls a pool to a new version through repeated passes
// and checks the bounds at every step.
func TestRolloutConverges(t *testing.T) {
	for _, r := range []struct{ surge, unavailable int32 }{{1, 0}, {0, 1}, {2, 1}, {3, 0}} {
		t.Run(fmt.Sprintf("surge %d unavailable %d", r.surge, r.unavailable), func(t *testing.T) {
			s := newSim(5, true)
			for name, m := range s.machines {
				m.KubernetesVersion = v1
				s.machines[name] = m
			}
			c := cluster([]v1alpha1.NodePool{pool("workers", 5)}, rollout(r.surge, r.unavailable))
			for i := range 60 {
				s.pass(t, c)
				if n := len(s.machines); n > 5+int(r.surge) {
					t.Fatalf("pass %d: %d machines, more than replicas+maxSurge", i, n)
				}
				if n := s.readyWorkers(); n < 5-int(r.unavailable) {
					t.Fatalf("pass %d: %d ready, fewer than replicas-maxUnavailable", i, n)
				}
			}
			for name, m := range s.machines {
				if m.KubernetesVersion != v2 || !s.nodes[name].Ready {
					t.Errorf("machine %s still at %s, ready %v", name, m.KubernetesVersion, s.nodes[name].Ready)
				}
			}
			if len(s.machines) != 5 || s.counts[Create] != 5 || s.counts[Delete] != 5 {
				t.Errorf("machines %d, creates %d, deletes %d; want 5 each", len(s.machines), s.counts[Create], s.counts[Delete])
			}
		})
	}
}
