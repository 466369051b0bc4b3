package autoscale

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecideAtRest is one idle pass's decision for the burst
// benchmark's cluster at rest: n nodes of 2 cpu with 30 pods of 10m each,
// every node below the scale-down threshold and no pod pending.
func BenchmarkDecideAtRest(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			old := t0.Add(-time.Hour)
			in := Input{Now: t0, Settings: settings(), Unneeded: map[string]time.Time{}}
			p := pool("burst", 0, n, template(2000, 8, nil))
			for i := range n {
				name := fmt.Sprintf("sim-%04d", i)
				var pods []*Pod
				for j := range 30 {
					pods = append(pods, bound(fmt.Sprintf("rest-%d-%d", i, j), 10))
				}
				node := readyNode(name, "burst", 2000, pods...)
				node.Allocatable.Memory = 8 * gi
				in.Nodes = append(in.Nodes, node)
				p.Machines = append(p.Machines, Machine{Name: name, Ready: true, CreatedAt: old})
				in.Unneeded[name] = t0.Add(-time.Second)
			}
			in.Pools = []Pool{p}
			b.ReportAllocs()
			for b.Loop() {
				Decide(in)
			}
		})
	}
}
