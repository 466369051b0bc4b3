package framework

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

// AutoscaledPool renders a nodePools entry for SpecYAML that the agent
// sizes itself, between min and max (no replicas).
func AutoscaledPool(name string, min, max int, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    minReplicas: %d\n    maxReplicas: %d\n", name, min, max)
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

// AutoscaledPoolStatus finds a pool in the autoscaler's last decision.
func AutoscaledPoolStatus(st *v1alpha1.ClusterStatus, pool string) (v1alpha1.AutoscaledPoolStatus, bool) {
	if st == nil || st.Autoscaling == nil {
		return v1alpha1.AutoscaledPoolStatus{}, false
	}
	for _, p := range st.Autoscaling.Pools {
		if p.Name == pool {
			return p, true
		}
	}
	return v1alpha1.AutoscaledPoolStatus{}, false
}

// PendingPodStatus finds a pod ("namespace/name") among the autoscaler's
// pending pods.
func PendingPodStatus(st *v1alpha1.ClusterStatus, pod string) (v1alpha1.PendingPodStatus, bool) {
	if st == nil || st.Autoscaling == nil {
		return v1alpha1.PendingPodStatus{}, false
	}
	for _, p := range st.Autoscaling.PendingPods {
		if p.Pod == pod {
			return p, true
		}
	}
	return v1alpha1.PendingPodStatus{}, false
}

// PodEvents lists the messages of the Events with the given reason on
// pods of namespace ns, by pod name.
func (c *Cluster) PodEvents(ctx context.Context, ns, reason string) (map[string][]string, error) {
	evs, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,reason=" + reason})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, e := range evs.Items {
		// A repeated Event is one object with a count.
		for range max(e.Count, 1) {
			out[e.InvolvedObject.Name] = append(out[e.InvolvedObject.Name], e.Message)
		}
	}
	return out, nil
}

// PendingPods lists the pods of every namespace that no node runs yet.
func (c *Cluster) PendingPods(ctx context.Context) ([]string, error) {
	pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.phase=" + string(corev1.PodPending)})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pods.Items {
		out = append(out, fmt.Sprintf("%s/%s (node %q)", p.Namespace, p.Name, p.Spec.NodeName))
	}
	return out, nil
}
