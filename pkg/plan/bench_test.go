package plan

import (
	"fmt"
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// bigInput is 1,000 workers in four pools of 250: one settled, one rolling
// to a new version, one with 10% unhealthy, one still starting up with some
// nodes cordoned; plus the control plane and ten stale Nodes.
func bigInput() Input {
	c := cluster([]v1alpha1.NodePool{pool("settled", 250), pool("rolling", 250), pool("sick", 250), pool("starting", 250)})
	in := Input{Cluster: c, Now: now, Self: "cp", OrphanGracePeriod: 10 * time.Minute,
		Machines: []providers.Machine{controlPlane("cp")}, Nodes: []Node{ready("cp", v1alpha1.ControlPlanePool)}}
	for _, p := range c.Spec.NodePools {
		for i := range 250 {
			name := fmt.Sprintf("%s-%03d", p.Name, i)
			m := machine(name, p.Name, time.Duration(i+1)*time.Minute)
			n := ready(name, p.Name)
			switch {
			case p.Name == "rolling":
				m.KubernetesVersion = v1
			case p.Name == "sick" && i%10 == 0:
				n = notReady(name, p.Name, time.Hour)
			case p.Name == "starting" && i%5 == 0:
				m.Phase, m.CreatedAt = providers.PhasePending, now.Add(-time.Minute)
				in.Machines = append(in.Machines, m)
				continue // no node yet
			case p.Name == "starting" && i%7 == 0:
				n.Unschedulable = true
			}
			in.Machines = append(in.Machines, m)
			in.Nodes = append(in.Nodes, n)
		}
	}
	for i := range 10 {
		in.Nodes = append(in.Nodes, notReady(fmt.Sprintf("gone-%d", i), "sick", time.Hour))
	}
	return in
}

func BenchmarkCompute1000(b *testing.B) {
	in := bigInput()
	p := Compute(in)
	if len(p.Actions) == 0 || len(p.Conditions) != 0 {
		b.Fatalf("unexpected plan: %d actions, conditions %v", len(p.Actions), p.Conditions)
	}
	b.ReportAllocs()
	for b.Loop() {
		Compute(in)
	}
}

// TestBigInput pins what the benchmark's plan does, so that it measures a
// realistic mix rather than an early exit.
func TestBigInput(t *testing.T) {
	got := Compute(bigInput())
	counts := map[string]int{}
	for _, a := range got.Actions {
		counts[string(a.Type)+" "+a.Pool]++
	}
	want := map[string]int{
		"Create rolling":  1,  // surge
		"Create sick":     25, // replacements
		"Delete sick":     25, // NotReady for an hour
		"DeleteNode sick": 10, // machines gone
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", counts, want)
	}
}
