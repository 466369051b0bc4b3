package drain

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/seedhq/seed/pkg/autoscale"
)

// PodsByNode is the name of the pod cache index Drainer reads: pods by
// spec.nodeName. Register it with AddIndexers(Indexers()).
const PodsByNode = "spec.nodeName"

// Indexers returns the pod informer indexers a Drainer needs. The cache
// holds compact records (autoscale.Pod, the informer's transform makes
// them), not Pods.
func Indexers() cache.Indexers {
	return cache.Indexers{PodsByNode: func(obj any) ([]string, error) {
		if p, ok := obj.(*autoscale.Pod); ok && p.NodeName != "" {
			return []string{p.NodeName}, nil
		}
		return nil, nil
	}}
}

// Progress is where one step left a node.
type Progress struct {
	// Done: no pod that must leave is left on the node.
	Done bool
	// PodsLeft counts pods that still have to leave.
	PodsLeft int
	// BlockedBy names the PodDisruptionBudgets (namespace/name) that refused
	// an eviction in this step.
	BlockedBy []string
}

// Drainer drains nodes. Client makes the writes (cordon, evictions) and the
// final live check; the caches serve every other read.
type Drainer struct {
	Client  kubernetes.Interface
	Nodes   corelisters.NodeLister
	Pods    cache.Indexer // pods' records (*autoscale.Pod), indexed by PodsByNode
	Budgets policylisters.PodDisruptionBudgetLister
	Clock   clock.PassiveClock
}

// Step cordons nodeName if needed, asks for the evictions it can, and
// reports what is left.
//
// A pod already being deleted is waited for while the node's kubelet
// reports (Ready True or False): it is still running its shutdown. On an
// unreachable node (Ready Unknown, or no Node object), no kubelet will
// confirm a deletion, so such a pod counts as gone once its grace period has
// run out (its deletionTimestamp has passed), as kubectl drain and Cluster
// API do; before that it may still be serving.
func (d Drainer) Step(ctx context.Context, nodeName string) (Progress, error) {
	return d.StepKeeping(ctx, nodeName, nil)
}

// StepKeeping is Step for a drain that leaves the pods keep selects on the
// node, as a control plane being replaced keeps the agent that replaces it.
func (d Drainer) StepKeeping(ctx context.Context, nodeName string, keep func(*autoscale.Pod) bool) (Progress, error) {
	leaves := func(pod *autoscale.Pod) bool { return mustLeave(pod) && (keep == nil || !keep(pod)) }
	node, err := d.Nodes.Get(nodeName)
	switch {
	case apierrors.IsNotFound(err):
		node = nil
	case err != nil:
		return Progress{}, fmt.Errorf("reading node %s from cache: %w", nodeName, err)
	case !node.Spec.Unschedulable:
		patch := []byte(`{"spec":{"unschedulable":true}}`)
		_, err := d.Client.CoreV1().Nodes().Patch(ctx, nodeName, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return Progress{}, fmt.Errorf("cordoning node %s: %w", nodeName, err)
		}
	}
	unreachable := node == nil || readyStatus(node) == corev1.ConditionUnknown
	now := d.Clock.Now()

	objs, err := d.Pods.ByIndex(PodsByNode, nodeName)
	if err != nil {
		return Progress{}, fmt.Errorf("listing pods of node %s from cache: %w", nodeName, err)
	}
	var progress Progress
	blocked := map[string]bool{}
	for _, obj := range objs {
		pod, ok := obj.(*autoscale.Pod)
		if !ok || !leaves(pod) {
			continue
		}
		if pod.Terminating {
			if !gone(pod, unreachable, now) {
				progress.PodsLeft++
			}
			continue
		}
		progress.PodsLeft++
		err := d.evict(ctx, pod)
		switch {
		case err == nil:
		case apierrors.IsNotFound(err):
			progress.PodsLeft--
		case apierrors.IsTooManyRequests(err):
			// The API server refuses evictions that would break a budget
			// with 429; name the budget so the user can see what blocks.
			for _, n := range d.blockingBudgets(pod) {
				blocked[n] = true
			}
		default:
			return progress, fmt.Errorf("evicting pod %s/%s from node %s: %w", pod.Namespace, pod.Name, nodeName, err)
		}
	}
	for n := range blocked {
		progress.BlockedBy = append(progress.BlockedBy, n)
	}
	sort.Strings(progress.BlockedBy)
	if progress.PodsLeft > 0 {
		return progress, nil
	}
	// The cache says empty. It may lag behind a pod bound just before the
	// cordon, so the verdict that lets the machine go is read live, once.
	left, err := d.liveCount(ctx, nodeName, unreachable, now, leaves)
	if err != nil {
		return progress, err
	}
	progress.PodsLeft = left
	progress.Done = left == 0
	return progress, nil
}

func (d Drainer) liveCount(ctx context.Context, nodeName string, unreachable bool, now time.Time, leaves func(*autoscale.Pod) bool) (int, error) {
	pods, err := d.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", nodeName).String(),
	})
	if err != nil {
		return 0, fmt.Errorf("listing pods on node %s: %w", nodeName, err)
	}
	n := 0
	for i := range pods.Items {
		if pod := autoscale.PodOf(&pods.Items[i]); leaves(pod) && !gone(pod, unreachable, now) {
			n++
		}
	}
	return n, nil
}

// gone reports whether a pod can be treated as no longer running.
func gone(pod *autoscale.Pod, unreachable bool, now time.Time) bool {
	return pod.Terminating && unreachable && !now.Before(pod.DeleteAt)
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return "" // registered, not reporting yet: its kubelet is starting
}

// mustLeave reports whether a drain waits for the pod: DaemonSet pods and
// static (mirror) pods stay with the node, finished pods hold nothing.
func mustLeave(pod *autoscale.Pod) bool {
	return pod.Owner != autoscale.OwnerNode && pod.Owner != autoscale.OwnerDaemonSet && !pod.Finished
}

// blockingBudgets names the budgets in the pod's namespace that select it.
func (d Drainer) blockingBudgets(pod *autoscale.Pod) []string {
	pdbs, err := d.Budgets.PodDisruptionBudgets(pod.Namespace).List(labels.Everything())
	var names []string
	if err == nil {
		for _, pdb := range pdbs {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil || sel.Empty() {
				continue
			}
			if sel.Matches(labels.Set(pod.Labels)) {
				names = append(names, pdb.Namespace+"/"+pdb.Name)
			}
		}
	}
	if len(names) == 0 {
		names = []string{pod.Namespace + "/(unknown budget)"}
	}
	sort.Strings(names)
	return names
}

// evict asks for one eviction without client-side retries: client-go would
// otherwise honour the Retry-After of a budget's 429 up to ten times,
// stalling the whole pass, when a refusal is exactly what a drain step wants
// to learn about and report.
func (d Drainer) evict(ctx context.Context, pod *autoscale.Pod) error {
	body := &policyv1.Eviction{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "Eviction"},
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
	}
	return d.Client.CoreV1().RESTClient().Post().
		Namespace(pod.Namespace).Resource("pods").Name(pod.Name).SubResource("eviction").
		MaxRetries(0).Body(body).Do(ctx).Error()
}
