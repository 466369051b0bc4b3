// Package plan decides what the agent should do to a cluster's machines. Its
// one entry point, Compute, is a pure function from the cluster spec and the
// observed machines and Nodes (and the time, passed in) to an ordered list of
// actions, each with the reason for it; carrying the actions out is the
// executor's job. The same input always yields the same plan.
//
// # Classes of machines
//
// Machines in PhaseDeleting are ignored: they are neither counted nor acted
// on again (their Nodes are not stale either, since the machine still exists).
// The others fall into one of four classes:
//
//   - control plane: Role control-plane or pool "control-plane". Never created
//     or deleted here; an unhealthy one yields a Blocked action.
//   - pool members: pool named in spec.nodePools. Scaled, healed and rolled.
//   - removed pools: role worker and a pool that is not in the spec. Deleted at
//     once, newest first.
//   - orphans: no pool, or an unknown pool without the worker role (so not a
//     pool that was removed but a machine whose ownership data is missing or
//     foreign). Deleted once older than Input.OrphanGracePeriod.
//
// # Health
//
// A machine is unhealthy when the provider reports it Failed; when its Node
// has been NotReady for longer than health.nodeNotReadyTimeout (a stopped
// machine's Node goes NotReady, so the same timeout applies to it); or when it
// has no Node and was created longer ago than health.nodeStartupTimeout. An
// unknown time (zero CreatedAt and ReadyTransition) never counts as a timeout
// having passed. A machine is ready when its Node is Ready and it is not
// Failed; only ready machines count as available.
//
// Unhealthy workers are deleted and, in the same plan, replaced: an unhealthy
// machine serves nothing, so deleting it costs no availability and there is
// nothing to gain by waiting for the replacement first. Unhealthy workers that
// are not deleted (see below) keep counting toward replicas, so a halted or
// blocked remediation never creates machines in their place; this is what
// stops a runaway when new machines cannot join either.
//
// Remediation halts when more workers are unhealthy than
// health.maxUnhealthy.Of(total): total is the workers of the spec's pools plus
// Nodes of worker pools whose machine has vanished, and those Nodes count as
// unhealthy. So does every worker whose Node is unreachable (Ready Unknown:
// the kubelet stopped reporting), before its timeout: workers that fail
// together go unreachable seconds apart, and counting only those past the
// timeout would let them be replaced one at a time, the slow runaway
// maxUnhealthy exists to prevent. Starting Nodes, NotReady until their pod
// network is up, do not count. While halted, no machine is deleted for health reasons (each
// withheld deletion is a Blocked action and the plan carries a
// RemediationHalted condition), and rolling replacement leaves unhealthy
// machines alone too. Creating machines to reach replicas, rolling out,
// removing pools and orphans, and deleting stale Nodes go on: they destroy
// nothing or follow an explicit spec change. A scale-down may still choose
// an unhealthy machine, since the spec asks for fewer and it is the best to
// lose. The same maxUnhealthy applies to every cluster size, so with the
// default 40% a cluster of one or two workers never remediates on its own.
//
// A Node of a Seed pool (it carries the pool label) whose machine the
// provider no longer lists is deleted if it is NotReady; a Ready one is
// suspicious and yields a Blocked action, as do the control plane's and
// Self's Nodes.
//
// # Scale-down order
//
// When a pool has more machines than replicas (and no rollout is under way),
// victims are chosen in this order:
//
//  1. unhealthy machines (only present when remediation is halted),
//  2. machines with no Ready Node,
//  3. machines whose Node is cordoned (unschedulable): likely already being
//     drained by an earlier plan, so the choice stays the same from one pass
//     to the next,
//  4. the rest, newest (CreatedAt) first,
//
// ties broken by name. The machine the agent runs on (Input.Self) is never a
// victim; if nothing else is left, a Blocked action says so.
//
// # Rolling replacement
//
// A machine is outdated when its Kubernetes version (the machine's own, else
// its Node's kubelet version) or machine type differs from its pool's. An
// empty value on either side is unknown and never counts as drift, so a pool
// that leaves the machine type to the provider is not rolled forever. While a
// pool has outdated machines it rolls like a Deployment: with R replicas,
// up to R+maxSurge machines may exist and at least R-maxUnavailable must stay
// available. Updated machines are created first (surge), outdated ones with
// no Ready Node are deleted next, and Ready outdated ones only as far as the
// available count allows. A machine being deleted no longer counts against
// maxSurge. The Self machine is never rolled; it counts as updated for the
// arithmetic and yields a Blocked action.
//
// # Recorded operations
//
// Input.Operations is the executor's ledger: work it recorded and has not
// finished, each a small state machine whose next step is written down
// before it is taken (OpCreate: StepCreate; OpDelete: StepDrain, then
// StepDeleteMachine, then StepDeleteNode). The planner decides what becomes
// of them; the executor only takes steps:
//
//   - A creation the provider does not list yet is planned as a Pending
//     machine of its pool, so it counts toward replicas and is not asked
//     for twice. One still not listed nodeStartupTimeout after it was
//     recorded yields GiveUp (the executor stops resuming it and deletes the
//     name, in case it appears late), and a fresh machine is planned if
//     still needed. A listed one is the executor's to finish.
//   - A machine with a recorded deletion is Deleting, and its Node is the
//     deletion's to remove, never stale. A deletion still draining
//     drainTimeout after its drain began yields SkipDrain: the machine is
//     deleted with its pods, so that a budget that can never be satisfied
//     cannot hold the cluster hostage.
//   - A recorded deletion of the Self machine yields Cancel; it is never
//     carried out.
//   - A machine still being created may be chosen by a scale-down like any
//     other; the deletion supersedes the creation (one operation a machine).
//
// While spec.paused is set, recorded operations wait too. Plan.Converged is
// true when no action but Blocked is planned, nothing is recorded, and every
// pool has its desired machines, all Ready and updated.
//
// # Backups before risky changes
//
// While spec.backup.enabled, three changes are gated on a backup taken for
// them: a Kubernetes version change (GateUpgrade: the control plane's
// replacement and every worker pool's roll to that version, one backup for
// all; not gated when spec.backup.beforeUpgrade is false), the replacement
// of a control-plane machine for another reason (GateReplaceControlPlane),
// and the deletion of a pool removed from the spec (GateRemovePool).
// Input.Backups holds the executor's records, one per change, each with
// its verdict. A change goes ahead when its backup is Good, or once it has
// gone ahead on one (Admitted: the executor marks the record when it
// carries out an action whose Gate is the change), so a long rollout never
// stops halfway because its backup grew old. Otherwise it waits, as a
// Blocked action saying for what:
//
//   - a recorded backup that is neither Good nor Final: wait for it;
//   - no backup can be taken (the location is not Available): wait, and
//     take none, since Velero fails it at once;
//   - none recorded, or the last one Final (failed, partial, stale,
//     deleted): TakeBackup, but not sooner than BackupRetryInterval after
//     the last one was recorded.
//
// While waiting, nothing else stops: a worker pool whose upgrade waits
// stays at the oldest version its machines run (it does not roll, and
// heals and scales at that version), and a removed pool's machines stay.
// A record whose change is neither waiting nor under way (done, or taken
// out of the spec) yields ForgetBackup; the backup itself stays in the
// store.
//
// # Creations in flight
//
// At most MaxCreationsInFlight creations are recorded and unfinished at
// once: the ledger holds each until its provider call returns, in one
// object the API server caps at 1 MiB. Creations past the bound wait for a
// later pass, each pool's as one Blocked action saying how many; the first
// pools in action order (by name) go first.
//
// # Action order
//
// Decisions on recorded operations (Cancel, GiveUp, SkipDrain, and the
// backups' TakeBackup and ForgetBackup) come first,
// then Creates, then Deletes, then DeleteNodes, then Blocked; within a type,
// by pool name, and within a pool in the order the planner chose them
// (victim order for deletes). Creates lead Deletes so that an executor which
// stops partway has added capacity rather than removed it.
//
// Compute reads a spec defaulted by v1alpha1.SetDefaults and applies no
// defaults of its own; a spec that was not defaulted yields one Blocked
// action naming the missing field.
package plan
