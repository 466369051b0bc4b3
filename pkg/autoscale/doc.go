// Package autoscale decides how autoscaled node pools change: from the
// pods the scheduler could not place, which pools grow and by how many
// machines; from the nodes' pods, which nodes are unneeded and may go.
// Every pending pod and every node it looks at gets a verdict that says
// why. Like pkg/plan it is pure (no I/O, no clock): Decide maps an
// observation to a Decision, which the agent hands to the planner as
// plan.Input.Autoscaled.
//
// # Scale-up
//
// A pending pod counts once the scheduler has marked it Unschedulable; pods
// of DaemonSets and pods already bound are left out. Each is first tried,
// in decreasing size, against the free room of the nodes that exist, Ready
// and schedulable (it fits: the scheduler will place it on its next try),
// then against the machines on their way (created, not Ready yet: each is
// its pool's template with its DaemonSet pods). The rest are packed
// first-fit-decreasing onto new machines: for every autoscaled pool with
// room under maxReplicas, the pods a new machine of it can hold are packed
// onto as few as possible; the pool whose new machines would waste the
// least of their cpu and memory wins those pods, and the next pool is
// chosen for what is left. A pod no pool can take gets every pool's
// reason: at maxReplicas; a taint not tolerated; a nodeSelector or node
// affinity that does not match; larger than a machine of the pool after
// its DaemonSet pods; its machine type unknown. A pod with a constraint the
// simulation does not model (pod affinity, topology spread, volumes) is
// reported as not simulated, never guessed at.
//
// The fit of a pod on a node follows the scheduler's filters for
// resources, taints, node selection, host ports and cordons (see Check);
// a separate module, parity/, checks it against kube-scheduler's own
// plugins.
//
// # Scale-down
//
// Scale-down is considered in a decision that grows no pool and leaves no
// pod waiting for a machine on its way. A node of an autoscaled pool is
// unneeded when the requests of its pods (DaemonSet pods included) are
// below Settings.Threshold of its allocatable cpu and of its memory, and
// every pod on it can leave: it has a controller, no local storage, no
// safe-to-evict "false" (nor karpenter.sh/do-not-disrupt), every
// PodDisruptionBudget that selects it allows the disruption, and it fits
// on another node. DaemonSet and mirror pods leave with the node. A node
// unneeded continuously for Settings.UnneededTime (the timer is the
// caller's to keep, Input.Unneeded, so it survives restarts), in a pool
// above minReplicas that has not grown for Settings.DelayAfterAdd, is
// removed: all empty unneeded nodes at once, at most one with pods to
// move, and none with pods while another such removal is draining. Every
// node looked at and kept gets the reason it is kept.
package autoscale
