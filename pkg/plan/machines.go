package plan

import (
	"cmp"
	"fmt"
	"slices"

	kversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// machineState is one machine with everything the rules ask of it, worked
// out once.
type machineState struct {
	m     *providers.Machine
	self  bool
	ready bool
	// cordoned: Ready but unschedulable, likely being drained.
	cordoned bool
	// unhealthy says why the machine is unhealthy; empty when it is not.
	unhealthy string
	// failing: its Node is unreachable, for however short a time. It counts
	// against maxUnhealthy before it is unhealthy enough to replace, so
	// machines that fail together and cross their timeout a few seconds
	// apart are seen together, not remediated one by one. Starting Nodes
	// (NotReady until their pod network is up) do not count.
	failing bool
	// outdated says how the machine differs from its pool; empty when it does not.
	outdated string
	// version is the Kubernetes version it runs, when known.
	version string
	// deleted is set once this plan deletes the machine.
	deleted bool
}

// poolState is a pool (spec, removed, or the control plane) and its machines.
type poolState struct {
	name        string
	spec        v1alpha1.NodePool
	version     string
	machineType string
	// gatedAt, when set, is the oldest control-plane version, older than
	// version: the pool does not roll to version yet, and creates machines
	// at gatedAt.
	gatedAt string
	// backupHeld: gatedAt holds the pool back for its backup, not for the
	// control plane.
	backupHeld bool
	// gate is the version change the pool's actions carry out, once its
	// backup let it go ahead (see gatePoolUpgrade).
	gate     string
	machines []*machineState
}

// observe works out a machine's state against its pool (nil for orphans).
func (p *planner) observe(ms *machineState, m *providers.Machine, n *Node, ps *poolState) {
	*ms = machineState{m: m, self: m.Name == p.in.Self}
	ms.unhealthy = p.health(m, n)
	ms.failing = ms.unhealthy != "" || (n != nil && n.Unreachable)
	ms.ready = n != nil && n.Ready && m.Phase != providers.PhaseFailed
	ms.cordoned = ms.ready && n.Unschedulable
	if ps != nil {
		version := m.KubernetesVersion
		if version == "" && n != nil {
			version = n.KubeletVersion
		}
		ms.version = version
		ms.outdated = ps.outdatedReason(ms)
	}
}

// outdatedReason says how machine ms differs from its pool, or "".
func (ps *poolState) outdatedReason(ms *machineState) string {
	switch {
	case ps.gatedAt == "" && differs(ms.version, ps.version):
		return fmt.Sprintf("Kubernetes %s, pool %s wants %s", ms.version, ps.name, ps.version)
	case differs(ms.m.MachineType, ps.machineType):
		return fmt.Sprintf("machine type %s, pool %s wants %s", ms.m.MachineType, ps.name, ps.machineType)
	}
	return ""
}

// gatePoolUpgrade applies the backup gate to a worker pool whose machines
// run another version than it wants. Held back by the control plane, the
// pool waits anyway, but its change stays under way. Held back by the
// gate, it stays at the oldest version its machines run, as if held back
// by the control plane: it does not roll, and creates machines at that
// version.
func (p *planner) gatePoolUpgrade(ps *poolState) {
	oldest := ""
	for _, ms := range ps.machines {
		if differs(ms.version, ps.version) && (oldest == "" || newer(oldest, ms.version)) {
			oldest = ms.version
		}
	}
	if oldest == "" {
		return // no version change
	}
	key := GateUpgrade(ps.version)
	if ps.gatedAt != "" {
		p.wanted[key] = true
		return
	}
	if p.gate(key, ps.name, "", fmt.Sprintf("the upgrade of pool %s to Kubernetes %s", ps.name, ps.version)) {
		ps.gate = key
		return
	}
	ps.gatedAt, ps.backupHeld = oldest, true
	for _, ms := range ps.machines {
		ms.outdated = ps.outdatedReason(ms)
	}
}

// differs is true when both values are known and not equal.
func differs(have, want string) bool { return have != "" && want != "" && have != want }

// health says why a machine is unhealthy, or "" when it is not.
func (p *planner) health(m *providers.Machine, n *Node) string {
	if m.Phase == providers.PhaseFailed {
		return "the provider reports the machine Failed"
	}
	if n != nil {
		if n.Ready {
			return ""
		}
		since := n.ReadyTransition
		if since.IsZero() {
			since = m.CreatedAt
		}
		if since.IsZero() {
			return ""
		}
		if d := p.in.Now.Sub(since); d > p.cfg.notReady {
			return fmt.Sprintf("node NotReady for %s (limit %s)", dur(d), dur(p.cfg.notReady))
		}
		return ""
	}
	if m.CreatedAt.IsZero() {
		return ""
	}
	if age := p.in.Now.Sub(m.CreatedAt); age > p.cfg.startup {
		return fmt.Sprintf("no node %s after creation (startup limit %s)", dur(age), dur(p.cfg.startup))
	}
	return ""
}

// has reports whether machine name is one of the pool's, not being deleted.
func (ps *poolState) has(name string) bool {
	for _, ms := range ps.machines {
		if ms.m.Name == name {
			return true
		}
	}
	return false
}

func (ps *poolState) sortByName() []*machineState {
	slices.SortFunc(ps.machines, byName)
	return ps.machines
}

func (ps *poolState) status(desired int32) PoolStatus {
	s := PoolStatus{Name: ps.name, Desired: desired, Current: int32(len(ps.machines))}
	for _, ms := range ps.machines {
		if ms.ready {
			s.Ready++
		}
		if ms.outdated == "" {
			s.Updated++
		}
		if ms.unhealthy != "" {
			s.Unhealthy++
		}
	}
	return s
}

func byName(a, b *machineState) int { return cmp.Compare(a.m.Name, b.m.Name) }

// newestFirst orders by CreatedAt, newest first, then by name.
func newestFirst(a, b *machineState) int {
	return cmp.Or(b.m.CreatedAt.Compare(a.m.CreatedAt), byName(a, b))
}

// victimTier is a machine's place in the scale-down order, and the words
// that explain it.
func victimTier(ms *machineState) (int, string) {
	switch {
	case ms.unhealthy != "":
		return 0, "unhealthy: " + ms.unhealthy
	case !ms.ready:
		return 1, "no Ready node"
	case ms.cordoned:
		return 2, "node cordoned"
	default:
		return 3, "newest"
	}
}

// victimOrder is the documented scale-down order.
func victimOrder(a, b *machineState) int {
	ta, _ := victimTier(a)
	tb, _ := victimTier(b)
	return cmp.Or(cmp.Compare(ta, tb), newestFirst(a, b))
}

// oldestControlPlane is the oldest Kubernetes version a control-plane
// machine runs, being deleted or not, from the provider's record or else its
// Node's kubelet; "" when none is known. Each control-plane machine runs
// its own API server at that version.
func oldestControlPlane(machines []providers.Machine, nodes map[string]*Node) string {
	oldest := ""
	for i := range machines {
		m := &machines[i]
		// Deleting or not: until the machine is gone, its API server may
		// still answer.
		if m.Role != providers.RoleControlPlane && m.Pool != v1alpha1.ControlPlanePool {
			continue
		}
		v := m.KubernetesVersion
		if v == "" && nodes[m.Name] != nil {
			v = nodes[m.Name].KubeletVersion
		}
		if v != "" && (oldest == "" || newer(oldest, v)) {
			oldest = v
		}
	}
	return oldest
}

// newer reports whether version a is newer than b; unparsable versions are
// never newer.
func newer(a, b string) bool {
	va, err1 := kversion.ParseGeneric(a)
	vb, err2 := kversion.ParseGeneric(b)
	return err1 == nil && err2 == nil && vb.LessThan(va)
}

// VersionNewer reports whether Kubernetes (or etcd) version a is newer than
// b; unparsable versions are never newer.
func VersionNewer(a, b string) bool { return newer(a, b) }
