package autoscale

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Resources are amounts as the scheduler counts them: millicores, bytes
// and pods, plus extended resources (and hugepages) by name.
type Resources struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	Pods             int64
	Scalar           map[corev1.ResourceName]int64
}

// HostPort is a port a pod's container binds on its node.
type HostPort struct {
	Protocol corev1.Protocol
	IP       string
	Port     int32
}

// OwnerKind is what a pod's controller is, as scale-down reads it.
type OwnerKind string

const (
	// OwnerNone: no controller; nothing would recreate the pod elsewhere.
	OwnerNone      OwnerKind = ""
	OwnerDaemonSet OwnerKind = "DaemonSet"
	// OwnerNode: a mirror pod (a static pod of the kubelet's).
	OwnerNode OwnerKind = "Node"
	// OwnerOther: any other controller (ReplicaSet, StatefulSet, Job, ...).
	OwnerOther OwnerKind = "Other"
)

// Pod is the compact record of a pod: what the simulation and a drain
// read and nothing else, so that tens of thousands fit in a few MiB. The
// agent's pod cache holds these, not Pods (see GetObjectMeta); records in a
// cache are shared and never changed.
type Pod struct {
	Namespace, Name string
	// NodeName is the node the pod is bound to; empty while pending.
	NodeName string
	Labels   map[string]string
	// Requests are the pod's effective requests (init containers,
	// sidecars and overhead included, as k8s.io/component-helpers'
	// resource.PodRequests computes them), with Pods 1.
	Requests     Resources
	Tolerations  []corev1.Toleration
	NodeSelector map[string]string
	// RequiredAffinity is the pod's required node affinity, if any.
	RequiredAffinity *corev1.NodeSelector
	HostPorts        []HostPort
	// NotSimulated names the first constraint the simulation does not
	// model (required inter-pod affinity, topology spread DoNotSchedule,
	// a PersistentVolumeClaim, resource claims); empty when there is none.
	// Such a pod gets a "not simulated" verdict, never a guess.
	NotSimulated string
	// Unschedulable: the scheduler set PodScheduled=False with reason
	// Unschedulable, Since being that condition's lastTransitionTime.
	Unschedulable bool
	Since         time.Time
	CreatedAt     time.Time
	Owner         OwnerKind
	// LocalStorage names a hostPath or disk-backed emptyDir volume that
	// dies with the node (unless listed in
	// cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes).
	LocalStorage string
	// SafeToEvict is the cluster-autoscaler.kubernetes.io/safe-to-evict
	// annotation: nil when absent.
	SafeToEvict *bool
	// Terminating: the pod has a deletion timestamp, DeleteAt; its grace
	// period ends then.
	Terminating bool
	DeleteAt    time.Time
	// Finished: the pod's phase is Succeeded or Failed. It holds nothing
	// on its node and no drain waits for it.
	Finished bool
}

// GetObjectMeta lets a cache key a record by namespace and name, as it keys
// the Pod it was made from (client-go's meta.Accessor reads this).
func (p *Pod) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}
}

// Key is the pod's namespace/name.
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// Node is a node as the simulation sees it: what it offers and what its
// pods already take.
type Node struct {
	Name string
	// Pool is the node's seed.dev/pool label.
	Pool          string
	Allocatable   Resources
	Labels        map[string]string
	Taints        []corev1.Taint
	Unschedulable bool
	Ready         bool
	// Pods are the non-terminal pods bound to the node.
	Pods []*Pod
}

// Template is what a new machine of a pool becomes as a Node: its
// allocatable (what its machine type offers pods), labels and taints.
type Template struct {
	Allocatable Resources
	Labels      map[string]string
	Taints      []corev1.Taint
}
