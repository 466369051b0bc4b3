package autoscale

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Machine is one of a pool's machines, existing or being created, not
// being deleted.
type Machine struct {
	Name string
	// Ready: its Node exists and is Ready; until then the machine is
	// capacity on its way.
	Ready     bool
	CreatedAt time.Time
}

// Pool is an autoscaled pool.
type Pool struct {
	Name     string
	Min, Max int
	Machines []Machine
	// Template is what a new machine of the pool becomes.
	Template Template
	// TemplateErr, when set, says why Template is unknown: the pool does
	// not grow, and pending pods say why.
	TemplateErr string
}

// PDB is a PodDisruptionBudget as scale-down reads it.
type PDB struct {
	Namespace, Name string
	Selector        labels.Selector
	// Allowed is status.disruptionsAllowed.
	Allowed int32
}

// Settings are spec.autoscaling's, defaulted.
type Settings struct {
	// Threshold is the fraction of allocatable (0..1) below which a
	// node's requests make it a candidate for removal.
	Threshold     float64
	UnneededTime  time.Duration
	DelayAfterAdd time.Duration
}

// Input is everything Decide decides from.
type Input struct {
	Pools []Pool
	// Nodes are all the cluster's nodes with the pods bound to them.
	Nodes []*Node
	// Pending are pods not bound to a node.
	Pending []*Pod
	// DaemonSets are the pod templates of the cluster's DaemonSets.
	DaemonSets []*Pod
	PDBs       []PDB
	// Unneeded is when each node was first found unneeded, as kept from
	// earlier decisions.
	Unneeded map[string]time.Time
	// Draining names the nodes whose voluntary removal is draining.
	Draining []string
	// Self is the machine the agent runs on; it is never removed.
	Self     string
	Settings Settings
	Now      time.Time
}

// VerdictCode is what becomes of a pending pod.
type VerdictCode string

const (
	// FitsExisting: a node that exists has room; the scheduler will place it.
	FitsExisting VerdictCode = "FitsExisting"
	// WaitsForMachine: a machine on its way will have room.
	WaitsForMachine VerdictCode = "WaitsForMachine"
	// ScaleUp: a new machine of Pool is created for it.
	ScaleUp VerdictCode = "ScaleUp"
	// NoPool: no autoscaled pool can take it; Pools says why for each.
	NoPool VerdictCode = "NoPool"
	// NotSimulatedPod: it has a constraint the simulation does not model.
	NotSimulatedPod VerdictCode = "NotSimulated"
)

// PoolReason is why one pool cannot take a pod.
type PoolReason struct {
	Pool string
	// Code is the fit's (a ReasonCode) or "AtMax" or "TemplateUnknown".
	Code    string
	Message string
}

// Pool reason codes beside the fit's.
const (
	AtMax           = "AtMaxReplicas"
	TemplateUnknown = "TemplateUnknown"
)

// PodVerdict is what the decision found for one pending pod.
type PodVerdict struct {
	Pod     string // namespace/name
	Verdict VerdictCode
	// Pool and Node name where it goes (ScaleUp, WaitsForMachine,
	// FitsExisting); Node is empty for a machine not created yet.
	Pool, Node string
	// Pools says, for NoPool, why each autoscaled pool cannot take it.
	Pools []PoolReason
	// Since is when the scheduler found it unschedulable.
	Since   time.Time
	Message string
}

// NodeState is what the decision found for a node of an autoscaled pool.
type NodeState string

const (
	Needed   NodeState = "Needed"
	Unneeded NodeState = "Unneeded"
	Removing NodeState = "Removing"
	// Kept: unneeded by its load, but something stops its removal.
	Kept NodeState = "Kept"
)

// NodeVerdict explains one node of an autoscaled pool.
type NodeVerdict struct {
	Node, Pool string
	State      NodeState
	// Utilization is the larger of its pods' cpu and memory requests as
	// a fraction of its allocatable.
	Utilization float64
	// Blocker is, for Kept, a stable reason code: NoController,
	// LocalStorage, NotSafeToEvict, PodDisruptionBudget, NoPlaceToMove,
	// MinReplicas, RecentScaleUp, ScaleUpUnderWay, AnotherDrain, Self.
	Blocker string
	Message string
}

// PoolDecision is how one pool changes.
type PoolDecision struct {
	Add       int
	AddReason string
	Remove    []Removal
	// Triggered is the earliest time a pod that this decision's Add is
	// for was found unschedulable.
	Triggered time.Time
}

// Removal is one unneeded machine to drain and delete, and why.
type Removal struct {
	Machine, Reason string
}

// Decision is Decide's result.
type Decision struct {
	Pools map[string]PoolDecision
	Pods  []PodVerdict
	Nodes []NodeVerdict
	// Unneeded is the timers to keep: every node now unneeded, and since when.
	Unneeded map[string]time.Time
	// NextCheck is when the decision may change by time alone (an
	// unneeded node's deadline, the end of a pool's delay after adding);
	// zero when nothing is due.
	NextCheck time.Time
}

// Decide computes the decision. It is pure.
func Decide(in Input) Decision {
	d := &decider{in: in, out: Decision{Pools: map[string]PoolDecision{}, Unneeded: map[string]time.Time{}}}
	d.index()
	d.scaleUp()
	d.scaleDown()
	slices.SortFunc(d.out.Pods, func(a, b PodVerdict) int { return cmp.Compare(a.Pod, b.Pod) })
	slices.SortFunc(d.out.Nodes, func(a, b NodeVerdict) int { return cmp.Compare(a.Node, b.Node) })
	return d.out
}

type decider struct {
	in  Input
	out Decision
	// pools by name, in input order; nodes by name.
	pools  []*poolPlan
	nodes  map[string]*Node
	ready  []*Bin // free room of existing Ready, schedulable nodes
	waited bool   // some pod waits for a machine on its way
	// claimed counts, by node, the pending pods found to fit on it: the
	// scheduler will put them there, so it is needed.
	claimed map[string]int
}

type poolPlan struct {
	Pool
	ds []*Pod // DaemonSet pods a new machine gets
	// added is the machines this decision creates.
	added int
}

func (pp *poolPlan) room() int { return pp.Max - len(pp.Machines) - pp.added }

func (d *decider) index() {
	d.nodes = make(map[string]*Node, len(d.in.Nodes))
	d.claimed = map[string]int{}
	for _, n := range d.in.Nodes {
		d.nodes[n.Name] = n
	}
	for _, p := range d.in.Pools {
		pp := &poolPlan{Pool: p}
		if p.TemplateErr == "" {
			pp.ds = DaemonSetPods(p.Template, d.in.DaemonSets)
		}
		d.pools = append(d.pools, pp)
	}
	for _, n := range d.in.Nodes {
		if n.Ready && !n.Unschedulable {
			b := BinOf(n)
			// A Ready node's not-ready taint is about to go: the node
			// lifecycle controller removes it within seconds.
			b.Taints = slices.DeleteFunc(slices.Clone(b.Taints), func(t corev1.Taint) bool {
				return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
			})
			d.ready = append(d.ready, b)
		}
	}
}

// newBin is an empty machine of pp with its DaemonSet pods on it.
func (pp *poolPlan) newBin(name string) *Bin {
	b := NewBin(name, pp.Name, pp.Template)
	for _, p := range pp.ds {
		b.Add(p)
	}
	return b
}

// scaleUp gives every pending pod a verdict and the pools their Add.
func (d *decider) scaleUp() {
	var pods []*Pod
	for _, p := range d.in.Pending {
		if p.NodeName != "" || !p.Unschedulable || p.Owner == OwnerDaemonSet || p.Terminating {
			continue
		}
		if p.NotSimulated != "" {
			d.out.Pods = append(d.out.Pods, PodVerdict{Pod: p.Key(), Verdict: NotSimulatedPod, Since: p.Since,
				Message: "not simulated: " + p.NotSimulated + "; the autoscaler does not model it, so it creates no machine for this pod"})
			continue
		}
		pods = append(pods, p)
	}
	sortBySize(pods)

	// The scheduler retries pods; room that exists now needs no machine.
	rest := pods[:0:0]
	for _, p := range pods {
		if b := firstFit(p, d.ready); b != nil {
			b.Add(p)
			d.claimed[b.Name]++
			d.out.Pods = append(d.out.Pods, PodVerdict{Pod: p.Key(), Verdict: FitsExisting, Pool: b.Pool, Node: b.Name, Since: p.Since,
				Message: "fits on node " + b.Name + ", which has room; the scheduler will place it"})
			continue
		}
		rest = append(rest, p)
	}

	// Machines on their way are capacity already paid for.
	var coming []*Bin
	for _, pp := range d.pools {
		if pp.TemplateErr != "" {
			continue
		}
		for _, m := range pp.Machines {
			if !m.Ready {
				coming = append(coming, d.upcoming(pp, m))
			}
		}
	}
	pods, rest = rest, rest[:0:0]
	for _, p := range pods {
		if b := firstFit(p, coming); b != nil {
			b.Add(p)
			d.waited = true
			d.out.Pods = append(d.out.Pods, PodVerdict{Pod: p.Key(), Verdict: WaitsForMachine, Pool: b.Pool, Node: b.Name, Since: p.Since,
				Message: fmt.Sprintf("waits for machine %s of pool %s, on its way", b.Name, b.Pool)})
			continue
		}
		rest = append(rest, p)
	}

	// New machines, pool by pool, least waste first.
	for len(rest) > 0 {
		best := d.bestOption(rest)
		if best == nil {
			break
		}
		pp := best.pool
		pp.added += best.machines
		pd := d.out.Pools[pp.Name]
		pd.Add += best.machines
		placed := map[*Pod]bool{}
		for _, p := range best.pods {
			placed[p] = true
			if pd.Triggered.IsZero() || p.Since.Before(pd.Triggered) {
				pd.Triggered = p.Since
			}
			d.out.Pods = append(d.out.Pods, PodVerdict{Pod: p.Key(), Verdict: ScaleUp, Pool: pp.Name, Since: p.Since,
				Message: fmt.Sprintf("triggered scale-up of pool %s: %d to %d machines", pp.Name, len(pp.Machines), len(pp.Machines)+pp.added)})
		}
		pd.AddReason = fmt.Sprintf("%d pending pods need %d more machines (%d to %d; maxReplicas %d)",
			countPods(d.out.Pods, pp.Name), pd.Add, len(pp.Machines), len(pp.Machines)+pd.Add, pp.Max)
		d.out.Pools[pp.Name] = pd
		rest = slices.DeleteFunc(rest, func(p *Pod) bool { return placed[p] })
	}
	for _, p := range rest {
		d.out.Pods = append(d.out.Pods, d.noPool(p))
	}
}

// upcoming is machine m of pp as it will be once Ready: a new machine of
// its pool, holding whatever is already bound to its Node. (The Node
// itself, NotReady, carries taints the machine will lose.)
func (d *decider) upcoming(pp *poolPlan, m Machine) *Bin {
	b := pp.newBin(m.Name)
	if n, ok := d.nodes[m.Name]; ok {
		for _, p := range n.Pods {
			if p.Owner != OwnerDaemonSet {
				b.Add(p)
			}
		}
	}
	return b
}

type option struct {
	pool     *poolPlan
	machines int
	pods     []*Pod
	waste    float64
}

// bestOption packs, for each pool with room, the pods a new machine of it
// can hold, and returns the pool that wastes least (then takes more pods,
// then comes first in the spec), or nil when no pool can take any.
func (d *decider) bestOption(pods []*Pod) *option {
	var best *option
	for _, pp := range d.pools {
		if pp.TemplateErr != "" || pp.room() <= 0 {
			continue
		}
		probe := pp.newBin("")
		var fits []*Pod
		for _, p := range pods {
			if Check(p, probe).Code == Fits {
				fits = append(fits, p)
			}
		}
		if len(fits) == 0 {
			continue
		}
		var bins []*Bin
		var placed []*Pod
		for _, p := range fits {
			b := firstFit(p, bins)
			if b == nil && len(bins) < pp.room() {
				b = pp.newBin(fmt.Sprintf("new-%s-%d", pp.Name, len(bins)))
				bins = append(bins, b)
			}
			if b == nil {
				continue // the pool is full; another pool may take it
			}
			b.Add(p)
			placed = append(placed, p)
		}
		o := &option{pool: pp, machines: len(bins), pods: placed, waste: waste(bins)}
		if best == nil || o.waste < best.waste-1e-9 ||
			(o.waste <= best.waste+1e-9 && len(o.pods) > len(best.pods)) {
			best = o
		}
	}
	return best
}

// waste is the mean unrequested fraction of cpu and memory over bins.
func waste(bins []*Bin) float64 {
	var cpu, mem, cpuCap, memCap float64
	for _, b := range bins {
		cpu += float64(b.Allocatable.MilliCPU - b.Requested.MilliCPU)
		mem += float64(b.Allocatable.Memory - b.Requested.Memory)
		cpuCap += float64(b.Allocatable.MilliCPU)
		memCap += float64(b.Allocatable.Memory)
	}
	var w float64
	if cpuCap > 0 {
		w += cpu / cpuCap
	}
	if memCap > 0 {
		w += mem / memCap
	}
	return w / 2
}

// noPool explains, pool by pool, why no pool takes p.
func (d *decider) noPool(p *Pod) PodVerdict {
	v := PodVerdict{Pod: p.Key(), Verdict: NoPool, Since: p.Since}
	var parts []string
	for _, pp := range d.pools {
		var r PoolReason
		if pp.TemplateErr != "" {
			r = PoolReason{Pool: pp.Name, Code: TemplateUnknown, Message: pp.TemplateErr}
		} else {
			m := Check(p, pp.newBin(""))
			switch {
			case m.Code != Fits:
				r = PoolReason{Pool: pp.Name, Code: string(m.Code), Message: m.Message}
				if m.Code == InsufficientResources {
					r.Message = "larger than a new machine of the pool: " + m.Message
				}
			default:
				r = PoolReason{Pool: pp.Name, Code: AtMax, Message: fmt.Sprintf("at maxReplicas %d", pp.Max)}
			}
		}
		v.Pools = append(v.Pools, r)
		parts = append(parts, "pool "+r.Pool+": "+r.Message)
	}
	if len(parts) == 0 {
		v.Message = "no pool is autoscaled: give a pool minReplicas and maxReplicas"
	} else {
		v.Message = "no pool can take it: " + strings.Join(parts, "; ")
	}
	return v
}

func countPods(vs []PodVerdict, pool string) int {
	n := 0
	for _, v := range vs {
		if v.Verdict == ScaleUp && v.Pool == pool {
			n++
		}
	}
	return n
}

// firstFit is the first bin p fits on, or nil.
func firstFit(p *Pod, bins []*Bin) *Bin {
	for _, b := range bins {
		if Check(p, b).Code == Fits {
			return b
		}
	}
	return nil
}

// sortBySize orders pods largest first (cpu, then memory, then name), as
// first-fit-decreasing packs them.
func sortBySize(pods []*Pod) {
	slices.SortStableFunc(pods, func(a, b *Pod) int {
		return cmp.Or(cmp.Compare(b.Requests.MilliCPU, a.Requests.MilliCPU),
			cmp.Compare(b.Requests.Memory, a.Requests.Memory), cmp.Compare(a.Key(), b.Key()))
	})
}
