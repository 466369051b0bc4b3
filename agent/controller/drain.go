package controller

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// drainProgress is where one drain step left a node.
type drainProgress struct {
	// Done: no pod that must leave is left on the node.
	Done bool
	// PodsLeft counts pods that still have to leave.
	PodsLeft int
	// BlockedBy names the PodDisruptionBudgets (namespace/name) that refused
	// an eviction in this step.
	BlockedBy []string
}

// drainer cordons a node and evicts its pods through the Eviction API, so
// PodDisruptionBudgets are honoured. One call is one non-blocking step: it
// asks for every eviction it can and reports what is left; the reconciler
// calls again until the node is empty or the drain times out.
type drainer struct {
	client kubernetes.Interface
}

func (d drainer) step(ctx context.Context, nodeName string) (drainProgress, error) {
	node, err := d.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return drainProgress{Done: true}, nil
	}
	if err != nil {
		return drainProgress{}, fmt.Errorf("reading node %s: %w", nodeName, err)
	}
	if !node.Spec.Unschedulable {
		patch := []byte(`{"spec":{"unschedulable":true}}`)
		if _, err := d.client.CoreV1().Nodes().Patch(ctx, nodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return drainProgress{}, fmt.Errorf("cordoning node %s: %w", nodeName, err)
		}
	}
	pods, err := d.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", nodeName).String(),
	})
	if err != nil {
		return drainProgress{}, fmt.Errorf("listing pods on node %s: %w", nodeName, err)
	}
	// On a node that is not Ready no kubelet will confirm a pod's deletion:
	// a pod already being deleted there is as good as gone (its controller
	// has made a replacement), or the drain would wait out its timeout.
	unreachable := !nodeReady(node)
	var progress drainProgress
	blocked := map[string]bool{}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !mustLeave(pod) {
			continue
		}
		if pod.DeletionTimestamp != nil {
			if !unreachable {
				progress.PodsLeft++ // already going
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
			names, perr := d.blockingBudgets(ctx, pod)
			if perr != nil {
				return progress, perr
			}
			for _, n := range names {
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
	progress.Done = progress.PodsLeft == 0
	return progress, nil
}

// mustLeave reports whether a drain waits for the pod: DaemonSet pods and
// static (mirror) pods stay with the node, finished pods hold nothing.
func mustLeave(pod *corev1.Pod) bool {
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && ref.Kind == "DaemonSet" {
			return false
		}
	}
	return true
}

func (d drainer) blockingBudgets(ctx context.Context, pod *corev1.Pod) ([]string, error) {
	pdbs, err := d.client.PolicyV1().PodDisruptionBudgets(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing PodDisruptionBudgets in %s: %w", pod.Namespace, err)
	}
	var names []string
	for _, pdb := range pdbs.Items {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			names = append(names, pdb.Namespace+"/"+pdb.Name)
		}
	}
	if len(names) == 0 {
		names = []string{pod.Namespace + "/(unknown budget)"}
	}
	return names, nil
}

// evict asks for one eviction without client-side retries: client-go would
// otherwise honour the Retry-After of a budget's 429 up to ten times,
// stalling the whole pass, when a refusal is exactly what a drain step wants
// to learn about and report.
func (d drainer) evict(ctx context.Context, pod *corev1.Pod) error {
	body := &policyv1.Eviction{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "Eviction"},
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
	}
	return d.client.CoreV1().RESTClient().Post().
		Namespace(pod.Namespace).Resource("pods").Name(pod.Name).SubResource("eviction").
		MaxRetries(0).Body(body).Do(ctx).Error()
}
