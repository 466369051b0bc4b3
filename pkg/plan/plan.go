package plan

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// Node is what the agent observed of a Node, already digested.
type Node struct {
	// Name equals the name of the machine the Node runs on.
	Name string
	// Pool is the value of the seed.dev/pool label; empty when the Node is
	// not one of Seed's.
	Pool  string
	Ready bool
	// Unreachable: the control plane lost contact with the kubelet (the
	// Ready condition is Unknown), as when the machine stopped or crashed.
	// A starting Node is NotReady but not unreachable.
	Unreachable bool
	// ReadyTransition is when the Ready condition last changed, so a
	// NotReady Node has been NotReady since then. Zero means unknown: the
	// machine's CreatedAt is used instead.
	ReadyTransition time.Time
	Unschedulable   bool
	KubeletVersion  string
}

// Input is everything Compute decides from.
type Input struct {
	// Cluster is the spec after v1alpha1.SetDefaults, valid. Compute does
	// not modify it.
	Cluster *v1alpha1.Cluster
	// Machines are those the provider lists, plus those recorded as being
	// created but not listed yet (PhasePending). Names are unique; if one
	// repeats, its first occurrence wins.
	Machines []providers.Machine
	// Nodes are the cluster's Nodes. If a name repeats, its first occurrence wins.
	Nodes []Node
	// Self is the name of the machine the agent runs on; it is never deleted.
	Self string
	// Now is the time the observation was made.
	Now time.Time
	// OrphanGracePeriod is how old (since CreatedAt) a machine that belongs
	// to no pool must be before it is deleted.
	OrphanGracePeriod time.Duration
	// Operations are the executor's recorded, unfinished work (its ledger).
	Operations []Operation
	// Backups are the backups recorded for risky changes and whether one
	// can be taken now; read only while spec.backup.enabled.
	Backups BackupInput
	// Autoscaled holds the autoscaler's decision (pkg/autoscale) for each
	// autoscaled pool, by name. A pool without one keeps the machines it
	// has, within its bounds.
	Autoscaled map[string]AutoscaledPool
}

// AutoscaledPool is how the autoscaler would change an autoscaled pool:
// relative to the machines the pool has, so that a plan made from the
// same observation can never count a machine twice.
type AutoscaledPool struct {
	// Add is how many machines to create, and AddReason why.
	Add       int
	AddReason string
	// Remove are unneeded machines to drain and delete, in order. Their
	// deletions are voluntary: a drain that cannot finish is cancelled
	// and the machine kept, never deleted with pods on it.
	Remove []Removal
}

// Removal is one machine the autoscaler finds unneeded, and why.
type Removal struct {
	Machine, Reason string
}

// ActionType is what an Action asks the executor to do.
type ActionType string

const (
	// Create a machine from Action.Create; the executor names it.
	Create ActionType = "Create"
	// Delete the machine Action.Machine.
	Delete ActionType = "Delete"
	// DeleteNode deletes the Node object Action.Machine, whose machine is gone.
	DeleteNode ActionType = "DeleteNode"
	// Blocked records a decision not to act on Action.Machine (or on
	// Action.Pool when Machine is empty); the executor only reports it.
	Blocked ActionType = "Blocked"
	// GiveUp ends the recorded creation of Action.Machine, which the
	// provider never listed: the executor stops resuming it and deletes the
	// name, in case it appears late.
	GiveUp ActionType = "GiveUp"
	// SkipDrain ends the drain of Action.Machine: the executor deletes the
	// machine with pods still on it.
	SkipDrain ActionType = "SkipDrain"
	// Cancel drops a recorded operation on Action.Machine without acting.
	Cancel ActionType = "Cancel"
	// ReplaceControlPlane replaces control-plane machine Action.Machine by
	// one made from Action.Create (the executor names it), as an
	// OpReplaceControlPlane.
	ReplaceControlPlane ActionType = "ReplaceControlPlane"
	// TakeBackup takes a backup for the risky change Action.Gate: the
	// executor records its name, then asks Velero for it and takes the
	// etcd snapshot that goes with it.
	TakeBackup ActionType = "TakeBackup"
	// ForgetBackup drops the record of backup Action.Machine, taken for
	// change Action.Gate, which is done or withdrawn. The backup stays in
	// the store.
	ForgetBackup ActionType = "ForgetBackup"
	// CancelDrain ends the voluntary deletion of Action.Machine, whose
	// drain cannot finish: the executor uncordons its Node and drops the
	// operation; the machine stays.
	CancelDrain ActionType = "CancelDrain"
)

// Action is one step of a plan.
type Action struct {
	Type ActionType
	Pool string
	// Machine is the machine (or Node) acted on; empty for Create.
	Machine string
	// Create is set for Create and ReplaceControlPlane: Pool, Role,
	// MachineType and KubernetesVersion are filled, Name is left to the
	// executor.
	Create *providers.MachineSpec
	// Reason says why, for logs and status.
	Reason string
	// Gate is the risky change (a Gate key) that the action carries out,
	// or that a TakeBackup or ForgetBackup is about; empty when backups
	// gate nothing the action does.
	Gate string
	// Voluntary marks a Delete the autoscaler chose: its drain is
	// cancelled, never skipped, when it cannot finish.
	Voluntary bool
}

// PoolStatus counts a pool's machines, not counting those being deleted.
type PoolStatus struct {
	Name string
	// Desired is spec replicas: 1 for the control plane, 0 for a removed pool.
	Desired int32
	// Current is the machines that exist or are being created.
	Current int32
	// Ready is the machines whose Node is Ready.
	Ready int32
	// Updated is the machines that match the pool's version and type.
	Updated int32
	// Unhealthy is the machines that are Failed or timed out (see the package doc).
	Unhealthy int32
}

// ConditionType names a cluster-wide state of the plan.
type ConditionType string

const (
	// ConditionPaused: spec.paused is set and the plan has no actions.
	ConditionPaused ConditionType = "Paused"
	// ConditionRemediationHalted: too many workers are unhealthy at once, so
	// none is deleted for being unhealthy.
	ConditionRemediationHalted ConditionType = "RemediationHalted"
)

// Condition is present in a plan when it holds.
type Condition struct {
	Type    ConditionType
	Message string
}

// Plan is the result of Compute.
type Plan struct {
	// Actions in the order to carry them out (see the package doc).
	Actions []Action
	// Pools: the control plane, then the spec's pools in spec order, then
	// removed pools that still have machines, by name.
	Pools      []PoolStatus
	Conditions []Condition
	// Converged: nothing to do and nothing under way; every pool has its
	// desired machines, all Ready and up to date.
	Converged bool
}

// Summary renders one line per action, then one per condition, for status
// and logs.
func (p Plan) Summary() []string {
	out := make([]string, 0, len(p.Actions)+len(p.Conditions))
	for _, a := range p.Actions {
		var subject string
		switch {
		case a.Type == Create:
			subject = "pool " + a.Pool
		case a.Pool == "":
			subject = a.Machine
		case a.Machine == "":
			subject = "pool " + a.Pool
		default:
			subject = a.Pool + "/" + a.Machine
		}
		out = append(out, fmt.Sprintf("%s %s: %s", a.Type, subject, a.Reason))
	}
	for _, c := range p.Conditions {
		out = append(out, fmt.Sprintf("%s: %s", c.Type, c.Message))
	}
	return out
}

// settings are the spec values the planner reads. Defaults are applied once,
// by v1alpha1.SetDefaults (Load does it); Compute does not apply them again.
type settings struct {
	startup, notReady, drainTimeout time.Duration
	maxUnhealthy                    v1alpha1.IntOrPercent
	maxSurge, maxUnav               int32
}

// settingsOf reads the defaulted spec. A spec that was not defaulted is a
// bug in the caller; it yields an error naming the field instead of a panic.
func settingsOf(s *v1alpha1.ClusterSpec) (settings, error) {
	h, r := s.Health, s.Rollout
	for field, missing := range map[string]bool{
		"spec.health.nodeStartupTimeout":  h.NodeStartupTimeout == nil,
		"spec.health.nodeNotReadyTimeout": h.NodeNotReadyTimeout == nil,
		"spec.health.maxUnhealthy":        h.MaxUnhealthy == nil,
		"spec.rollout.maxSurge":           r.MaxSurge == nil,
		"spec.rollout.maxUnavailable":     r.MaxUnavailable == nil,
		"spec.rollout.drainTimeout":       r.DrainTimeout == nil,
	} {
		if missing {
			return settings{}, fmt.Errorf("%s is not set: the spec was not defaulted (v1alpha1.SetDefaults)", field)
		}
	}
	return settings{
		startup:      h.NodeStartupTimeout.Duration,
		notReady:     h.NodeNotReadyTimeout.Duration,
		drainTimeout: r.DrainTimeout.Duration,
		maxUnhealthy: *h.MaxUnhealthy,
		maxSurge:     max(*r.MaxSurge, 0),
		maxUnav:      max(*r.MaxUnavailable, 0),
	}, nil
}

// planner holds one Compute call's state.
type planner struct {
	in      Input
	cfg     settings
	halted  string // why remediation is halted; empty when it is not
	actions []Action
	// deleting names the machines with a recorded deletion: their Nodes are
	// the deletion's to remove, never stale.
	deleting map[string]bool
	// replacing is the recorded control-plane replacement, if any.
	replacing *Operation
	// records are the recorded backups by gate; wanted holds the gates of
	// changes under way or waiting; taking and forgotten, the gates this
	// plan takes a backup for or forgets.
	records                   map[string]BackupRecord
	wanted, taking, forgotten map[string]bool
}

// Compute decides what to do. It is pure: no I/O, no clock, no randomness.
func Compute(in Input) Plan {
	c := in.Cluster
	cfg, err := settingsOf(&c.Spec)
	if err != nil {
		return Plan{Actions: []Action{{Type: Blocked, Reason: "no action taken: " + err.Error()}}}
	}
	p := &planner{in: in, cfg: cfg, records: map[string]BackupRecord{},
		wanted: map[string]bool{}, taking: map[string]bool{}, forgotten: map[string]bool{}}
	recs := slices.Clone(in.Backups.Records)
	slices.SortFunc(recs, func(a, b BackupRecord) int { return cmp.Or(cmp.Compare(a.Gate, b.Gate), cmp.Compare(a.Name, b.Name)) })
	for _, rec := range recs {
		if _, dup := p.records[rec.Gate]; !dup {
			p.records[rec.Gate] = rec
		}
	}
	machines := p.planOperations(in.Machines)

	nodes := make(map[string]*Node, len(in.Nodes))
	for i := range in.Nodes {
		if _, dup := nodes[in.Nodes[i].Name]; !dup {
			nodes[in.Nodes[i].Name] = &in.Nodes[i]
		}
	}

	// Spec pools, indexed; a reserved or repeated name is reported, not planned.
	pools := make([]*poolState, 0, len(c.Spec.NodePools))
	byPool := make(map[string]*poolState, len(c.Spec.NodePools))
	var specProblems []Action
	for _, np := range c.Spec.NodePools {
		switch _, dup := byPool[np.Name]; {
		case np.Name == v1alpha1.ControlPlanePool:
			specProblems = append(specProblems, Action{Type: Blocked, Pool: np.Name,
				Reason: "pool name " + np.Name + " is reserved for the control plane; pool not managed"})
		case dup:
			specProblems = append(specProblems, Action{Type: Blocked, Pool: np.Name,
				Reason: "pool " + np.Name + " appears more than once in the spec; only the first is managed"})
		default:
			ps := &poolState{name: np.Name, spec: np, version: c.PoolVersion(np), machineType: np.MachineType}
			pools = append(pools, ps)
			byPool[np.Name] = ps
		}
	}

	// Workers never run a kubelet newer than the oldest API server: a pool
	// that wants a newer version than the oldest control-plane machine
	// runs does not roll, and the machines it creates meanwhile (scaling,
	// healing) run that oldest version.
	oldest := oldestControlPlane(machines, nodes)
	if r := p.replacing; r != nil && r.ReplacesVersion != "" && ReplaceStepIndex(r.Step) < ReplaceStepIndex(StepDeleteOldNode) &&
		(oldest == "" || newer(oldest, r.ReplacesVersion)) {
		// The old machine may already be missing from the provider's list
		// while its removal finishes: until the deletion has returned, it
		// holds the workers back.
		oldest = r.ReplacesVersion
	}
	if oldest != "" {
		for _, ps := range pools {
			if newer(ps.version, oldest) {
				ps.gatedAt = oldest
			}
		}
	}

	// Classify machines. exists holds every listed name, Deleting included,
	// so that a Node of a machine being deleted is not taken as stale.
	exists := make(map[string]struct{}, len(machines))
	cp := &poolState{name: v1alpha1.ControlPlanePool, version: c.Spec.KubernetesVersion,
		machineType: c.Spec.ControlPlane.MachineType}
	removed := map[string]*poolState{}
	var orphans []*machineState
	states := make([]machineState, len(machines)) // one allocation for all
	for i := range machines {
		m := &machines[i]
		if _, dup := exists[m.Name]; dup {
			continue
		}
		exists[m.Name] = struct{}{}
		if m.Phase == providers.PhaseDeleting {
			continue
		}
		var ps *poolState
		switch {
		case m.Role == providers.RoleControlPlane || m.Pool == v1alpha1.ControlPlanePool:
			ps = cp
		case byPool[m.Pool] != nil:
			ps = byPool[m.Pool]
		case m.Pool != "" && m.Role == providers.RoleWorker:
			if ps = removed[m.Pool]; ps == nil {
				ps = &poolState{name: m.Pool}
				removed[m.Pool] = ps
			}
		}
		ms := &states[i]
		p.observe(ms, m, nodes[m.Name], ps)
		if ps == nil {
			orphans = append(orphans, ms)
			continue
		}
		ps.machines = append(ps.machines, ms)
	}

	// Nodes of Seed's pools whose machine is gone.
	var stale []*Node
	for _, n := range nodes {
		if _, ok := exists[n.Name]; !ok && n.Pool != "" && !p.deleting[n.Name] {
			stale = append(stale, n)
		}
	}
	slices.SortFunc(stale, func(a, b *Node) int { return cmp.Compare(a.Name, b.Name) })

	removedPools := make([]*poolState, 0, len(removed))
	for _, ps := range removed {
		removedPools = append(removedPools, ps)
	}
	slices.SortFunc(removedPools, func(a, b *poolState) int { return cmp.Compare(a.name, b.name) })

	// A worker pool's own version change waits for its backup like the
	// control plane's: until the backup admits it, the pool stays at the
	// version its machines run.
	for _, ps := range pools {
		ps.sortByName()
		p.gatePoolUpgrade(ps)
	}

	plan := Plan{Pools: make([]PoolStatus, 0, 1+len(pools)+len(removedPools))}
	plan.Pools = append(plan.Pools, cp.status(1))
	for _, ps := range pools {
		ps.sortByName()
		plan.Pools = append(plan.Pools, ps.status(int32(p.want(ps))))
	}
	for _, ps := range removedPools {
		plan.Pools = append(plan.Pools, ps.status(0))
	}

	if c.Spec.Paused {
		// Recorded work waits too: paused means no action at all.
		plan.Conditions = append(plan.Conditions, Condition{Type: ConditionPaused,
			Message: "spec.paused is true: observing only, no actions taken"})
		return plan
	}

	p.haltIfTooManyUnhealthy(pools, stale)
	if p.halted != "" {
		plan.Conditions = append(plan.Conditions, Condition{Type: ConditionRemediationHalted, Message: p.halted})
	}

	p.actions = append(p.actions, specProblems...)
	p.planControlPlane(cp)
	for _, ps := range pools {
		from := len(p.actions)
		p.planPool(ps)
		if ps.gate != "" {
			p.tagGate(from, ps.gate)
		}
	}
	for _, ps := range removedPools {
		p.planRemovedPool(ps)
	}
	p.planOrphans(orphans)
	p.planStaleNodes(stale)
	p.forgetBackups()

	slices.SortStableFunc(p.actions, func(a, b Action) int {
		return cmp.Or(cmp.Compare(rank(a.Type), rank(b.Type)), cmp.Compare(a.Pool, b.Pool))
	})
	plan.Actions = limitCreations(p.actions, in.Operations)
	plan.Converged = converged(plan, len(in.Operations))
	return plan
}

// MaxCreationsInFlight bounds the creations recorded and not yet returned
// by the provider. The ledger is one ConfigMap holding each (about 250
// bytes) until its provider call returns, so 5,000 at once would pass the
// API server's 1 MiB object limit, and no write of it could succeed.
const MaxCreationsInFlight = 1000

// limitCreations keeps the first creations (actions are in plan order:
// by pool name) that fit MaxCreationsInFlight beside those recorded, and
// turns the rest into one Blocked action per pool saying how many wait.
func limitCreations(actions []Action, ops []Operation) []Action {
	room := MaxCreationsInFlight
	for _, op := range ops {
		if op.Type == OpCreate {
			room--
		}
	}
	var out []Action
	waiting := map[string]int{}
	var order []string
	for _, a := range actions {
		if a.Type != Create {
			out = append(out, a)
			continue
		}
		if room > 0 {
			room--
			out = append(out, a)
			continue
		}
		if waiting[a.Pool] == 0 {
			order = append(order, a.Pool)
		}
		waiting[a.Pool]++
	}
	for _, pool := range order {
		out = append(out, Action{Type: Blocked, Pool: pool, Reason: fmt.Sprintf(
			"%d more machines wait: at most %d creations are in flight at once (the ledger is one object)",
			waiting[pool], MaxCreationsInFlight)})
	}
	return out
}

// converged: no action but Blocked ones, no recorded work, and every pool
// at its desired count, all Ready and updated.
func converged(p Plan, operations int) bool {
	if operations > 0 {
		return false
	}
	for _, a := range p.Actions {
		if a.Type != Blocked {
			return false
		}
	}
	for _, ps := range p.Pools {
		if ps.Ready != ps.Desired || ps.Updated != ps.Desired || ps.Current != ps.Desired {
			return false
		}
	}
	return true
}

// rank orders action types: work on recorded operations first (it frees or
// settles what the rest counts), then capacity before removal.
func rank(t ActionType) int {
	switch t {
	case Cancel, CancelDrain, GiveUp, SkipDrain, ForgetBackup, TakeBackup:
		return 0
	case ReplaceControlPlane, Create:
		return 1
	case Delete:
		return 2
	case DeleteNode:
		return 3
	default:
		return 4
	}
}

// haltIfTooManyUnhealthy applies health.maxUnhealthy across worker pools.
func (p *planner) haltIfTooManyUnhealthy(pools []*poolState, stale []*Node) {
	var total, unhealthy int
	for _, ps := range pools {
		total += len(ps.machines)
		for _, ms := range ps.machines {
			if ms.failing {
				unhealthy++
			}
		}
	}
	for _, n := range stale {
		if n.Pool != v1alpha1.ControlPlanePool {
			total++
			unhealthy++
		}
	}
	if limit := p.cfg.maxUnhealthy.Of(total); unhealthy > limit {
		p.halted = fmt.Sprintf("remediation halted: %d of %d machines unhealthy, more than maxUnhealthy %s (%d)",
			unhealthy, total, p.cfg.maxUnhealthy.String(), limit)
	}
}

func (p *planner) del(ms *machineState, pool, reason string) {
	ms.deleted = true
	p.actions = append(p.actions, Action{Type: Delete, Pool: pool, Machine: ms.m.Name, Reason: reason})
}

func (p *planner) block(pool, machine, reason string) {
	p.actions = append(p.actions, Action{Type: Blocked, Pool: pool, Machine: machine, Reason: reason})
}

// deleteOrBlock deletes ms unless it is the Self machine.
func (p *planner) deleteOrBlock(ms *machineState, pool, reason string) {
	if ms.self {
		p.block(pool, ms.m.Name, reason+"; not deleted: the agent runs on it")
		return
	}
	p.del(ms, pool, reason)
}

// planControlPlane replaces the control-plane machine when it is outdated,
// one replacement at a time and only when nothing else is under way. An
// unhealthy control plane is reported, never remediated.
func (p *planner) planControlPlane(cp *poolState) {
	for _, ms := range cp.sortByName() {
		if ms.unhealthy == "" {
			continue
		}
		why := "control-plane machines are never replaced automatically"
		if ms.self {
			why = "the agent runs on it"
		}
		p.block(cp.name, ms.m.Name, fmt.Sprintf("control-plane machine %s: %s; not remediated: %s", ms.m.Name, ms.unhealthy, why))
	}
	if r := p.replacing; r != nil {
		// The recorded replacement carries on, and so does the change its
		// backup admitted.
		if differs(r.ReplacesVersion, r.Spec.KubernetesVersion) {
			p.wanted[GateUpgrade(r.Spec.KubernetesVersion)] = true
		} else {
			p.wanted[GateReplaceControlPlane(r.Replaces)] = true
		}
		return
	}
	var outdated []*machineState
	for _, ms := range cp.machines {
		if ms.outdated != "" {
			outdated = append(outdated, ms)
		}
	}
	if len(outdated) == 0 {
		return
	}
	ms := outdated[0]
	what := "control-plane machine " + ms.m.Name + " is outdated (" + ms.outdated + ")"
	key := GateReplaceControlPlane(ms.m.Name)
	if differs(ms.version, cp.version) {
		key = GateUpgrade(cp.version)
	}
	p.wanted[key] = true
	switch {
	case len(cp.machines) != 1:
		p.block(cp.name, ms.m.Name, fmt.Sprintf("%s; not replaced: the control plane has %d machines and no replacement is recorded; "+
			"a replacement starts from exactly one", what, len(cp.machines)))
	case ms.unhealthy != "" || !ms.ready:
		p.block(cp.name, ms.m.Name, what+"; not replaced until its node is Ready")
	case len(p.in.Operations) > 0:
		p.block(cp.name, ms.m.Name, fmt.Sprintf("%s; replaced once the %d recorded operations are done", what, len(p.in.Operations)))
	case !p.gate(key, cp.name, ms.m.Name, "the replacement of control-plane machine "+ms.m.Name+" ("+ms.outdated+")"):
	default:
		p.actions = append(p.actions, Action{Type: ReplaceControlPlane, Pool: cp.name, Machine: ms.m.Name, Gate: key,
			Reason: what + "; surge replacement: a new control plane joins, then this one leaves",
			Create: &providers.MachineSpec{Pool: cp.name, Role: providers.RoleControlPlane,
				MachineType: cp.machineType, KubernetesVersion: cp.version}})
	}
}

func (p *planner) planRemovedPool(ps *poolState) {
	ms := slices.Clone(ps.machines)
	if len(ms) == 0 {
		return
	}
	key := GateRemovePool(ps.name)
	if !p.gate(key, ps.name, "", fmt.Sprintf("the removal of pool %s (%d machines)", ps.name, len(ms))) {
		return
	}
	from := len(p.actions)
	slices.SortFunc(ms, newestFirst)
	for _, m := range ms {
		p.deleteOrBlock(m, ps.name, "pool "+ps.name+" was removed from the spec")
	}
	p.tagGate(from, key)
}

func (p *planner) planOrphans(orphans []*machineState) {
	slices.SortFunc(orphans, byName)
	for _, ms := range orphans {
		m := ms.m
		if m.CreatedAt.IsZero() {
			continue // age unknown: never old enough
		}
		age := p.in.Now.Sub(m.CreatedAt)
		if age <= p.in.OrphanGracePeriod {
			continue
		}
		what := "has no pool"
		if m.Pool != "" {
			what = fmt.Sprintf("has pool %q, which is not in the spec, and role %q", m.Pool, m.Role)
		}
		p.deleteOrBlock(ms, m.Pool, fmt.Sprintf("orphan: machine %s, created %s ago (grace period %s)",
			what, dur(age), dur(p.in.OrphanGracePeriod)))
	}
}

func (p *planner) planStaleNodes(stale []*Node) {
	for _, n := range stale {
		switch {
		case n.Name == p.in.Self:
			p.block(n.Pool, n.Name, "the provider does not list the machine of node "+n.Name+
				"; node not deleted: the agent runs on it")
		case n.Pool == v1alpha1.ControlPlanePool:
			p.block(n.Pool, n.Name, "the provider does not list the machine of control-plane node "+n.Name+
				"; node not deleted")
		case n.Ready:
			p.block(n.Pool, n.Name, "node "+n.Name+" is Ready but the provider does not list its machine; "+
				"node not deleted: check the provider")
		default:
			p.actions = append(p.actions, Action{Type: DeleteNode, Pool: n.Pool, Machine: n.Name,
				Reason: "machine " + n.Name + " no longer exists and its node is NotReady"})
		}
	}
}

// dur renders a duration to the second: "6m0s".
func dur(d time.Duration) string { return d.Truncate(time.Second).String() }
