package scaleenv

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// RunWorkload creates a Deployment of replicas pods in the default
// namespace that the scheduler spreads over the untainted simulated
// machines and kwok runs: what the agent's drains evict when it scales a
// pool down.
func (e *Env) RunWorkload(ctx context.Context, name string, replicas int32) error {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// Only kwok's Nodes: no kubelet would ever run it elsewhere.
					NodeSelector:                  map[string]string{"type": "kwok"},
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10.1",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}}}},
				},
			},
		},
	}
	if _, err := e.Client.AppsV1().Deployments(metav1.NamespaceDefault).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the workload %s: %w", name, err)
	}
	return nil
}

// WorkloadReady returns how many of the workload's pods are ready, and
// how many it wants.
func (e *Env) WorkloadReady(ctx context.Context, name string) (ready, want int32, err error) {
	d, err := e.Client.AppsV1().Deployments(metav1.NamespaceDefault).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("reading the workload %s: %w", name, err)
	}
	return d.Status.ReadyReplicas, ptr.Deref(d.Spec.Replicas, 1), nil
}
