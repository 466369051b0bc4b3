package plan

import (
	"fmt"
	"slices"

	"github.com/seedhq/seed/providers"
)

// planPool heals, scales and rolls one pool of the spec. Its machines are
// sorted by name.
func (p *planner) planPool(ps *poolState) {
	keep := make([]*machineState, 0, len(ps.machines))
	var withheld []*machineState // unhealthy, not deleted for it
	replaced := 0
	for _, ms := range ps.machines {
		if ms.unhealthy != "" {
			if ms.self || p.halted != "" {
				withheld = append(withheld, ms)
			} else {
				// Unhealthy means unavailable: deleting it costs nothing,
				// and its replacement is created below, in this plan.
				p.del(ms, ps.name, ms.unhealthy)
				replaced++
				continue
			}
		}
		keep = append(keep, ms)
	}

	var updated, outdated []*machineState
	for _, ms := range keep {
		switch {
		case ms.outdated == "":
			updated = append(updated, ms)
		case ms.self:
			// Counted as updated so that the pool settles at replicas.
			updated = append(updated, ms)
			p.block(ps.name, ms.m.Name, "outdated: "+ms.outdated+"; not replaced: the agent runs on it")
		default:
			outdated = append(outdated, ms)
		}
	}
	if ps.gatedAt != "" && !ps.backupHeld {
		for _, ms := range keep {
			if differs(ms.version, ps.version) {
				p.block(ps.name, "", fmt.Sprintf("pool %s: Kubernetes %s waits for the control plane, whose oldest machine runs %s; kubelets are never newer than the API server",
					ps.name, ps.version, ps.gatedAt))
				break
			}
		}
	}
	if len(outdated) == 0 {
		p.scale(ps, keep, replaced)
	} else {
		p.roll(ps, updated, outdated)
	}

	// A scale-down may still have chosen a withheld machine: the spec asks
	// for fewer machines, and an unhealthy one is the best to lose.
	for _, ms := range withheld {
		switch {
		case ms.deleted:
		case ms.self:
			p.block(ps.name, ms.m.Name, ms.unhealthy+"; not replaced: the agent runs on it")
		default:
			p.block(ps.name, ms.m.Name, ms.unhealthy+"; not replaced: "+p.halted)
		}
	}
}

// scale brings a pool with no outdated machines to its replicas.
func (p *planner) scale(ps *poolState, keep []*machineState, replaced int) {
	want, have := p.want(ps), len(keep)
	if a, ok := p.in.Autoscaled[ps.name]; ok && ps.spec.Autoscaled() && have > want {
		keep = p.removeUnneeded(ps, keep, a, have-want)
		have = len(keep)
	}
	switch {
	case have < want:
		reason := fmt.Sprintf("pool %s has %d of %d replicas", ps.name, have, want)
		if a, ok := p.in.Autoscaled[ps.name]; ok && ps.spec.Autoscaled() && a.AddReason != "" && have >= int(*ps.spec.MinReplicas) {
			reason = fmt.Sprintf("pool %s: %s", ps.name, a.AddReason)
		}
		if replaced > 0 {
			reason += fmt.Sprintf(" (replacing %d unhealthy)", replaced)
		}
		p.create(ps, want-have, reason)
	case have > want:
		p.scaleDown(ps, keep, have-want, fmt.Sprintf("pool %s has %d machines, wants %d", ps.name, have, want))
	}
}

// scaleDown deletes count of cands in victim order, never Self, and returns
// the machines it kept.
func (p *planner) scaleDown(ps *poolState, cands []*machineState, count int, why string) []*machineState {
	sorted := slices.Clone(cands)
	slices.SortFunc(sorted, victimOrder)
	kept := sorted[:0:0]
	var self *machineState
	for _, ms := range sorted {
		switch {
		case count == 0:
			kept = append(kept, ms)
		case ms.self:
			self = ms
			kept = append(kept, ms)
		default:
			_, tier := victimTier(ms)
			p.del(ms, ps.name, why+"; chosen: "+tier)
			count--
		}
	}
	if count > 0 && self != nil {
		p.block(ps.name, self.m.Name, why+"; not deleted: the agent runs on it")
	}
	return kept
}

// roll replaces outdated machines like a Deployment's rolling update: at
// most replicas+maxSurge machines, at least replicas-maxUnavailable of them
// available. The arithmetic follows the Deployment controller's so that the
// same intuitions hold.
func (p *planner) roll(ps *poolState, updated, outdated []*machineState) {
	want := p.want(ps)
	surge, unavailable := int(p.cfg.maxSurge), int(p.cfg.maxUnav)
	if len(updated) > want {
		// Scaled down mid-rollout: updated machines beyond replicas go too.
		updated = p.scaleDown(ps, updated, len(updated)-want,
			fmt.Sprintf("pool %s has %d updated machines, wants %d", ps.name, len(updated), want))
	}

	minAvailable := max(want-unavailable, 0)
	updatedReady, ready := 0, 0
	for _, ms := range updated {
		if ms.ready {
			updatedReady++
		}
	}
	ready = updatedReady
	for _, ms := range outdated {
		if ms.ready {
			ready++
		}
	}
	// maxDown bounds all deletions of outdated machines, so that updated
	// machines still starting up are not counted as capacity; readyBudget
	// bounds deletions of the outdated machines that are available.
	maxDown := len(outdated) + updatedReady - minAvailable
	readyBudget := ready - minAvailable

	sorted := slices.Clone(outdated)
	slices.SortFunc(sorted, victimOrder)
	deleted, readyDeleted := 0, 0
	for _, ms := range sorted {
		if deleted >= maxDown {
			break
		}
		if ms.unhealthy != "" {
			continue // withheld while remediation is halted
		}
		if !ms.ready {
			p.del(ms, ps.name, "outdated: "+ms.outdated+"; rolling replacement, no Ready node")
			deleted++
			continue
		}
		if readyDeleted >= readyBudget {
			break
		}
		p.del(ms, ps.name, fmt.Sprintf("outdated: %s; rolling replacement, %d available, minAvailable %d",
			ms.outdated, ready-readyDeleted, minAvailable))
		deleted++
		readyDeleted++
	}

	total := len(updated) + len(outdated) - deleted
	creates := min(want+surge-total, want-len(updated))
	if creates > 0 {
		p.create(ps, creates, fmt.Sprintf("pool %s rolling out: %d of %d replicas updated (maxSurge %d, maxUnavailable %d)",
			ps.name, len(updated), want, surge, unavailable))
	}
	if creates <= 0 && deleted == 0 && surge == 0 && unavailable == 0 {
		p.block(ps.name, "", fmt.Sprintf("rollout of pool %s cannot progress: maxSurge and maxUnavailable are both 0", ps.name))
	}
}

func (p *planner) create(ps *poolState, n int, reason string) {
	v := ps.version
	if ps.gatedAt != "" {
		v = ps.gatedAt
	}
	for range n {
		p.actions = append(p.actions, Action{Type: Create, Pool: ps.name, Reason: reason, Create: &providers.MachineSpec{
			Pool:              ps.name,
			Role:              providers.RoleWorker,
			MachineType:       ps.machineType,
			KubernetesVersion: v,
		}})
	}
}

// want is the number of machines the pool should have: spec replicas, or
// for an autoscaled pool the machines it has (being deleted aside) changed
// by the autoscaler's decision, within minReplicas and maxReplicas.
func (p *planner) want(ps *poolState) int {
	if !ps.spec.Autoscaled() {
		return max(int(ps.spec.Replicas), 0)
	}
	n := len(ps.machines)
	if a, ok := p.in.Autoscaled[ps.name]; ok {
		n += a.Add
		for _, r := range a.Remove {
			if ps.has(r.Machine) {
				n--
			}
		}
	}
	return min(max(n, int(*ps.spec.MinReplicas)), int(*ps.spec.MaxReplicas))
}

// removeUnneeded deletes, voluntarily, up to count of the machines the
// autoscaler found unneeded (never Self), and returns the machines kept.
func (p *planner) removeUnneeded(ps *poolState, keep []*machineState, a AutoscaledPool, count int) []*machineState {
	chosen := map[string]string{}
	for _, r := range a.Remove {
		if len(chosen) == count {
			break
		}
		if _, dup := chosen[r.Machine]; !dup && r.Machine != p.in.Self && ps.has(r.Machine) {
			chosen[r.Machine] = r.Reason
		}
	}
	kept := keep[:0:0]
	for _, ms := range keep {
		why, ok := chosen[ms.m.Name]
		if !ok || ms.deleted {
			kept = append(kept, ms)
			continue
		}
		p.del(ms, ps.name, why)
		p.actions[len(p.actions)-1].Voluntary = true
	}
	return kept
}
