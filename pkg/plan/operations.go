package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/seedhq/seed/providers"
)

// OperationType is a kind of long, multi-step work the executor records in
// its ledger before each step and resumes after a crash.
type OperationType string

const (
	// OpCreate: asking the provider for a machine, until one call returns.
	OpCreate OperationType = "create"
	// OpDelete: cordon and drain, delete the machine, delete its Node.
	OpDelete OperationType = "delete"
	// OpReplaceControlPlane: surge the control plane from one machine to
	// two and back: the new machine (Operation.Machine) joins at the target
	// version, the agent moves to it, and the old one (Operation.Replaces)
	// leaves etcd and goes. Its steps, in order, are ReplaceSteps.
	OpReplaceControlPlane OperationType = "replace-control-plane"
	// OpBackup: a backup for a risky change (BackupRecord), from its name
	// recorded to its etcd snapshot stored; its steps, in order, are
	// BackupSteps. It is no machine's: the planner reads it as a
	// BackupRecord, never as an Operation.
	OpBackup OperationType = "backup"
)

// Step is where an operation stands: the step it will take next.
type Step string

const (
	// StepCreate: render the machine's bootstrap and ask the provider for it.
	StepCreate Step = "create"
	// StepDrain: cordon the Node and evict its pods, until none must leave.
	StepDrain Step = "drain"
	// StepDeleteMachine: ask the provider to delete the machine.
	StepDeleteMachine Step = "delete-machine"
	// StepDeleteNode: delete the machine's Node object; then the operation is done.
	StepDeleteNode Step = "delete-node"

	// The steps of OpReplaceControlPlane.

	// StepPrepare: raise the cluster's kubeadm configuration to the target
	// version, which a joining control plane deploys.
	StepPrepare Step = "prepare"
	// StepJoin: ask the provider for the new control-plane machine, which
	// runs kubeadm join --control-plane (its etcd member a learner, then
	// promoted).
	StepJoin Step = "join"
	// StepWaitReady: wait until the new Node is Ready, its API server is
	// ready and its etcd member is a voting member.
	StepWaitReady Step = "wait-ready"
	// StepDrainOld: cordon the old control plane and evict every pod but
	// the agent's.
	StepDrainOld Step = "drain-old"
	// StepHandover: an agent Ready on the new machine, then the one on the
	// old machine leaves (the etcd leadership moved off the old member
	// first). An agent on the old machine takes no later step.
	StepHandover Step = "handover"
	// StepRemoveMember: remove the old machine's etcd member.
	StepRemoveMember Step = "remove-member"
	// StepDeleteOldMachine: ask the provider to delete the old machine.
	StepDeleteOldMachine Step = "delete-old-machine"
	// StepDeleteOldNode: delete the old machine's Node; then the operation
	// is done.
	StepDeleteOldNode Step = "delete-old-node"
	// StepRollBack: the new control plane was not healthy within
	// nodeStartupTimeout: remove its etcd member, machine and Node; the old
	// one carries on, and a later pass tries again.
	StepRollBack Step = "roll-back"
)

// The steps of OpBackup.
const (
	// StepCreateBackup: ask Velero for the backup, under the recorded name.
	StepCreateBackup Step = "create-backup"
	// StepWaitBackup: wait until Velero's backup is judged good.
	StepWaitBackup Step = "wait-backup"
	// StepEtcdSnapshot: take the etcd snapshot and store it beside the
	// backup, with the control plane's certificates.
	StepEtcdSnapshot Step = "etcd-snapshot"
	// StepBackupDone: both are stored; the record stays until the change
	// it was taken for is done.
	StepBackupDone Step = "done"
)

// BackupSteps are OpBackup's steps in the order taken.
var BackupSteps = []Step{StepCreateBackup, StepWaitBackup, StepEtcdSnapshot, StepBackupDone}

// ReplaceSteps are OpReplaceControlPlane's steps in the order taken.
var ReplaceSteps = []Step{StepPrepare, StepJoin, StepWaitReady, StepDrainOld, StepHandover,
	StepRemoveMember, StepDeleteOldMachine, StepDeleteOldNode}

// ReplaceStepIndex is where step stands in ReplaceSteps, or -1.
func ReplaceStepIndex(step Step) int { return slices.Index(ReplaceSteps, step) }

// Operation is a piece of work the executor has recorded and not finished.
type Operation struct {
	Type OperationType
	// Machine is the machine it is about; one operation per machine.
	Machine string
	// Spec is the machine asked for (OpCreate): Pool, Role, MachineType and
	// KubernetesVersion.
	Spec providers.MachineSpec
	Step Step
	// Pool is the machine's pool.
	Pool string
	// RecordedAt is when the operation was recorded.
	RecordedAt time.Time
	// DrainStartedAt is when its drain began (OpDelete); zero until then.
	DrainStartedAt time.Time
	// Replaces is the control-plane machine an OpReplaceControlPlane
	// replaces, and ReplacesVersion the version it runs.
	Replaces        string
	ReplacesVersion string
	// Voluntary marks an OpDelete the autoscaler chose (Action.Voluntary).
	Voluntary bool
	// BlockedBy names the PodDisruptionBudgets that refused the drain's
	// last evictions (OpDelete).
	BlockedBy []string
}

// planOperations decides what becomes of recorded work, before the machines
// are classified. It returns the machines to plan with: the listed ones,
// creations the provider does not list yet as Pending, and machines being
// deleted as Deleting.
func (p *planner) planOperations(machines []providers.Machine) []providers.Machine {
	ops := slices.Clone(p.in.Operations)
	slices.SortFunc(ops, func(a, b Operation) int { return cmp.Compare(a.Machine, b.Machine) })
	listed := make(map[string]int, len(machines))
	for i := range machines {
		if _, dup := listed[machines[i].Name]; !dup {
			listed[machines[i].Name] = i
		}
	}
	out := slices.Clone(machines)
	seen := make(map[string]bool, len(ops))
	p.deleting = map[string]bool{}
	for _, op := range ops {
		if seen[op.Machine] {
			continue // one operation per machine; the first (by order above) wins
		}
		seen[op.Machine] = true
		i, isListed := listed[op.Machine]
		switch op.Type {
		case OpCreate:
			if isListed {
				continue // listed is not finished: the executor resumes the call
			}
			if age := p.in.Now.Sub(op.RecordedAt); !op.RecordedAt.IsZero() && age > p.cfg.startup {
				p.actions = append(p.actions, Action{Type: GiveUp, Pool: op.Pool, Machine: op.Machine,
					Reason: fmt.Sprintf("the provider has not listed machine %s %s after it was asked for (nodeStartupTimeout %s); "+
						"a fresh machine is planned if one is still needed", op.Machine, dur(age), dur(p.cfg.startup))})
				continue
			}
			out = append(out, providers.Machine{Name: op.Machine, Pool: op.Spec.Pool, Role: op.Spec.Role,
				MachineType: op.Spec.MachineType, KubernetesVersion: op.Spec.KubernetesVersion,
				Phase: providers.PhasePending, CreatedAt: op.RecordedAt})
		case OpReplaceControlPlane:
			if p.replacing != nil {
				p.actions = append(p.actions, Action{Type: Blocked, Pool: op.Pool, Machine: op.Machine,
					Reason: "a second control-plane replacement is recorded, for machine " + op.Machine + "; only " + p.replacing.Machine + "'s is carried out"})
				continue
			}
			replacing := op
			p.replacing = &replacing
			// The old machine's Node is the operation's to delete, never stale.
			p.deleting[op.Replaces] = true
			if j, ok := listed[op.Replaces]; ok && ReplaceStepIndex(op.Step) > ReplaceStepIndex(StepRemoveMember) {
				// Its etcd member is gone, so is its API server: the machine
				// no longer counts, for the workers' version gate above all,
				// whatever state the provider shows while removing it.
				out[j].Phase = providers.PhaseDeleting
			}
			if !isListed && ReplaceStepIndex(op.Step) > ReplaceStepIndex(StepJoin) {
				out = append(out, providers.Machine{Name: op.Machine, Pool: op.Spec.Pool, Role: op.Spec.Role,
					MachineType: op.Spec.MachineType, KubernetesVersion: op.Spec.KubernetesVersion,
					Phase: providers.PhasePending, CreatedAt: op.RecordedAt})
			}
		case OpDelete:
			if op.Machine == p.in.Self {
				// Never planned; a hand-edited ledger must not make the agent
				// delete the machine it runs on either.
				p.actions = append(p.actions, Action{Type: Cancel, Pool: op.Pool, Machine: op.Machine,
					Reason: "a recorded deletion names machine " + op.Machine + ", which the agent runs on; not deleted"})
				continue
			}
			if op.Voluntary && op.Step == StepDrain && isListed {
				if why := p.cancelDrain(op); why != "" {
					// Cancelled, the machine counts again as the pool's.
					p.actions = append(p.actions, Action{Type: CancelDrain, Pool: op.Pool, Machine: op.Machine, Reason: why})
					continue
				}
			}
			p.deleting[op.Machine] = true
			if isListed {
				out[i].Phase = providers.PhaseDeleting
			}
			if op.Step == StepDrain && !op.DrainStartedAt.IsZero() && !op.Voluntary {
				if d := p.in.Now.Sub(op.DrainStartedAt); d >= p.cfg.drainTimeout {
					// Policy: a drain that outlives drainTimeout does not hold
					// the cluster hostage; the machine goes, as Cluster API
					// does, and controllers reschedule the pods left.
					p.actions = append(p.actions, Action{Type: SkipDrain, Pool: op.Pool, Machine: op.Machine,
						Reason: fmt.Sprintf("drain of machine %s has run %s, past drainTimeout %s; deleting it anyway",
							op.Machine, dur(d), dur(p.cfg.drainTimeout))})
				}
			}
		}
	}
	return out
}

// cancelDrain says why the autoscaler's drain of op.Machine ends without
// deleting it, or "" while it may go on. Policy: a voluntary removal never
// overrides a PodDisruptionBudget and never outlives drainTimeout, as
// cluster-autoscaler keeps a node whose eviction fails; only spec changes
// delete a machine with pods still on it.
func (p *planner) cancelDrain(op Operation) string {
	if len(op.BlockedBy) > 0 {
		return fmt.Sprintf("the autoscaler's drain of machine %s is refused by PodDisruptionBudget %s; cancelled: the machine stays and its node is uncordoned (autoscaler drains are never forced)",
			op.Machine, strings.Join(op.BlockedBy, ", "))
	}
	if op.DrainStartedAt.IsZero() {
		return ""
	}
	if d := p.in.Now.Sub(op.DrainStartedAt); d >= p.cfg.drainTimeout {
		return fmt.Sprintf("the autoscaler's drain of machine %s has run %s, past drainTimeout %s; cancelled: the machine stays and its node is uncordoned (autoscaler drains are never forced)",
			op.Machine, dur(d), dur(p.cfg.drainTimeout))
	}
	return ""
}
