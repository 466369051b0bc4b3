package autoscale

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// maxEmptyRemovals bounds the empty nodes removed in one decision.
const maxEmptyRemovals = 10

// candidate is a node of an autoscaled pool that scale-down looks at.
type candidate struct {
	node  *Node
	pool  *poolPlan
	util  float64
	empty bool // only DaemonSet and mirror pods
}

// scaleDown finds the unneeded nodes of autoscaled pools and the ones to
// remove now.
func (d *decider) scaleDown() {
	grows := false
	for _, pd := range d.out.Pools {
		grows = grows || pd.Add > 0
	}
	var cands []*candidate
	for _, pp := range d.pools {
		for _, m := range pp.Machines {
			n, ok := d.nodes[m.Name]
			if !ok || !m.Ready || !n.Ready {
				continue
			}
			c := &candidate{node: n, pool: pp, util: utilization(n), empty: true}
			for _, p := range n.Pods {
				if p.Owner != OwnerDaemonSet && p.Owner != OwnerNode && !p.Terminating {
					c.empty = false
				}
			}
			cands = append(cands, c)
		}
	}
	// Emptiest first: they are the cheapest to remove.
	slices.SortFunc(cands, func(a, b *candidate) int {
		return cmp.Or(cmp.Compare(a.util, b.util), cmp.Compare(a.node.Name, b.node.Name))
	})

	// Room elsewhere: every Ready, schedulable node, less what the pods
	// of nodes already chosen take.
	room := d.ready
	removing := map[string]bool{}
	left := map[string]int{} // machines each pool keeps
	for _, pp := range d.pools {
		left[pp.Name] = len(pp.Machines)
	}
	budgets := map[string]int32{}
	for _, b := range d.in.PDBs {
		budgets[b.Namespace+"/"+b.Name] = b.Allowed
	}
	draining := len(d.in.Draining) > 0
	emptyRemoved, busyRemoved := 0, 0

	for _, c := range cands {
		n, pp := c.node, c.pool
		v := NodeVerdict{Node: n.Name, Pool: pp.Name, Utilization: c.util}
		keep := func(blocker, msg string) {
			v.State, v.Blocker, v.Message = Kept, blocker, msg
			d.out.Nodes = append(d.out.Nodes, v)
		}
		if k := d.claimed[n.Name]; k > 0 {
			v.State = Needed
			v.Message = fmt.Sprintf("%d pending pods fit on it; the scheduler will place them", k)
			d.out.Nodes = append(d.out.Nodes, v)
			continue
		}
		if c.util >= d.in.Settings.Threshold {
			v.State = Needed
			v.Message = fmt.Sprintf("requests %s of its allocatable, at or above the threshold %s", pct(c.util), pct(d.in.Settings.Threshold))
			d.out.Nodes = append(d.out.Nodes, v)
			continue
		}
		if n.Name == d.in.Self {
			keep("Self", "the agent runs on it")
			continue
		}
		if n.Unschedulable {
			keep("Cordoned", "cordoned by someone else; left alone")
			continue
		}
		if left[pp.Name] <= pp.Min {
			keep("MinReplicas", fmt.Sprintf("pool %s is at minReplicas %d", pp.Name, pp.Min))
			continue
		}
		moves, blocker, msg := d.movable(n, room, removing, budgets)
		if blocker != "" {
			keep(blocker, msg)
			continue
		}
		since, ok := d.in.Unneeded[n.Name]
		if !ok || since.After(d.in.Now) {
			since = d.in.Now
		}
		d.out.Unneeded[n.Name] = since
		due := since.Add(d.in.Settings.UnneededTime)
		newest := newestMachine(pp)
		calm := newest.Add(d.in.Settings.DelayAfterAdd)
		switch {
		case grows || d.waited:
			keep("ScaleUpUnderWay", "unneeded, but pods are waiting for machines: no scale-down while a scale-up is under way")
		case d.in.Now.Before(due):
			v.State = Unneeded
			v.Message = fmt.Sprintf("unneeded since %s (requests %s, below %s; its pods fit elsewhere): removed at %s unless that changes",
				since.UTC().Format(time.RFC3339), pct(c.util), pct(d.in.Settings.Threshold), due.UTC().Format(time.RFC3339))
			d.out.Nodes = append(d.out.Nodes, v)
			d.next(due)
		case d.in.Now.Before(calm):
			keep("RecentScaleUp", fmt.Sprintf("unneeded, but pool %s grew at %s: no removal before %s (scaleDownDelayAfterAdd)",
				pp.Name, newest.UTC().Format(time.RFC3339), calm.UTC().Format(time.RFC3339)))
			d.next(calm)
		case !c.empty && (draining || busyRemoved > 0):
			keep("AnotherDrain", "unneeded; waits until the node being drained for scale-down is gone")
		case c.empty && emptyRemoved >= maxEmptyRemovals:
			keep("AnotherDrain", fmt.Sprintf("unneeded; at most %d empty nodes go at once", maxEmptyRemovals))
		default:
			for _, mv := range moves {
				mv.to.Add(mv.pod)
			}
			for _, key := range pdbsOf(moves) {
				budgets[key]--
			}
			removing[n.Name] = true
			left[pp.Name]--
			if c.empty {
				emptyRemoved++
			} else {
				busyRemoved++
			}
			v.State = Removing
			v.Message = fmt.Sprintf("unneeded for %s (requests %s, below %s); %d pods move to other nodes",
				d.in.Now.Sub(since).Round(time.Second), pct(c.util), pct(d.in.Settings.Threshold), len(moves))
			d.out.Nodes = append(d.out.Nodes, v)
			pd := d.out.Pools[pp.Name]
			pd.Remove = append(pd.Remove, Removal{Machine: n.Name, Reason: "autoscaler: node " + v.Message})
			d.out.Pools[pp.Name] = pd
		}
	}
}

func (d *decider) next(t time.Time) {
	if d.out.NextCheck.IsZero() || t.Before(d.out.NextCheck) {
		d.out.NextCheck = t
	}
}

// move is where a pod of a node being removed would go.
type move struct {
	pod  *Pod
	to   *Bin
	pdbs []string
}

// movable checks that every pod of n may leave it and finds each a place
// on a bin of room (n's own and those being removed aside), tentatively:
// the caller commits the moves. It returns a blocker code and message
// when one cannot.
func (d *decider) movable(n *Node, room []*Bin, removing map[string]bool, budgets map[string]int32) ([]move, string, string) {
	var pods []*Pod
	for _, p := range n.Pods {
		switch {
		case p.Owner == OwnerDaemonSet || p.Owner == OwnerNode || p.Terminating:
			continue // leaves with the node
		case p.SafeToEvict != nil && *p.SafeToEvict:
			// Annotated safe to evict: the rules below do not apply.
		case p.SafeToEvict != nil && !*p.SafeToEvict:
			return nil, "NotSafeToEvict", fmt.Sprintf("pod %s is annotated not safe to evict", p.Key())
		case p.Owner == OwnerNone:
			return nil, "NoController", fmt.Sprintf("pod %s has no controller to recreate it elsewhere", p.Key())
		case p.LocalStorage != "":
			return nil, "LocalStorage", fmt.Sprintf("pod %s has local storage (volume %s) that would be lost", p.Key(), p.LocalStorage)
		}
		pods = append(pods, p)
	}
	// Budgets: each pod's eviction uses one disruption of every budget
	// selecting it.
	use := map[string]int32{}
	var moves []move
	for _, p := range pods {
		var keys []string
		for _, b := range d.in.PDBs {
			if b.Namespace == p.Namespace && b.Selector != nil && b.Selector.Matches(labels.Set(p.Labels)) {
				key := b.Namespace + "/" + b.Name
				use[key]++
				if use[key] > budgets[key] {
					return nil, "PodDisruptionBudget", fmt.Sprintf("PodDisruptionBudget %s allows %d disruptions; moving pod %s would need more",
						key, max(budgets[key], 0), p.Key())
				}
				keys = append(keys, key)
			}
		}
		moves = append(moves, move{pod: p, pdbs: keys})
	}
	sortMoves(moves)
	var taken []*move
	for i := range moves {
		mv := &moves[i]
		var why []string
		for _, b := range room {
			if b.Name == n.Name || removing[b.Name] {
				continue
			}
			m := Check(mv.pod, b)
			if m.Code == Fits {
				mv.to = b
				break
			}
			why = append(why, b.Name+": "+m.Message)
		}
		if mv.to == nil {
			for _, t := range taken {
				t.to.Remove(t.pod)
			}
			msg := fmt.Sprintf("pod %s fits on no other node", mv.pod.Key())
			if len(why) > 0 {
				msg += " (" + strings.Join(firstN(why, 3), "; ") + ")"
			}
			return nil, "NoPlaceToMove", msg
		}
		// Held while the other pods are placed, so that two do not count
		// on the same room; released for the caller to commit.
		mv.to.Add(mv.pod)
		taken = append(taken, mv)
	}
	for _, t := range taken {
		t.to.Remove(t.pod)
	}
	return moves, "", ""
}

func sortMoves(moves []move) {
	slices.SortStableFunc(moves, func(a, b move) int {
		return cmp.Or(cmp.Compare(b.pod.Requests.MilliCPU, a.pod.Requests.MilliCPU),
			cmp.Compare(b.pod.Requests.Memory, a.pod.Requests.Memory))
	})
}

func pdbsOf(moves []move) []string {
	var out []string
	for _, m := range moves {
		out = append(out, m.pdbs...)
	}
	return out
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

// utilization is the larger of n's cpu and memory requests as a fraction
// of its allocatable, DaemonSet and mirror pods included.
func utilization(n *Node) float64 {
	var cpu, mem int64
	for _, p := range n.Pods {
		if p.Terminating {
			continue
		}
		cpu += p.Requests.MilliCPU
		mem += p.Requests.Memory
	}
	u := 0.0
	if a := n.Allocatable.MilliCPU; a > 0 {
		u = float64(cpu) / float64(a)
	}
	if a := n.Allocatable.Memory; a > 0 {
		u = max(u, float64(mem)/float64(a))
	}
	return u
}

// newestMachine is when the pool's newest machine was created.
func newestMachine(pp *poolPlan) time.Time {
	var t time.Time
	for _, m := range pp.Machines {
		if m.CreatedAt.After(t) {
			t = m.CreatedAt
		}
	}
	return t
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }
