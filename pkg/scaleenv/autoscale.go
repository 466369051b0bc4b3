package scaleenv

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/seedhq/seed/providers"
)

// Pods describe a Deployment of identical pods for one pool.
type Pods struct {
	// Name is the Deployment's, and its pods' app label.
	Name     string
	Replicas int32
	// CPU each pod requests ("1500m").
	CPU string
	// Pool the pods are for: they select its machines by the pool label,
	// so the control-plane machine (untainted in the harness) takes none.
	Pool string
}

// RunPods creates the Deployment, all its replicas at once.
func (e *Env) RunPods(ctx context.Context, p Pods) error {
	cpu, err := resource.ParseQuantity(p.CPU)
	if err != nil {
		return fmt.Errorf("the pods' cpu %q: %w", p.CPU, err)
	}
	labels := map[string]string{"app": p.Name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: metav1.NamespaceDefault},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(p.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{providers.LabelPool: p.Pool},
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10.1",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: cpu}}}},
				},
			},
		},
	}
	if _, err := e.Client.AppsV1().Deployments(metav1.NamespaceDefault).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the Deployment %s: %w", p.Name, err)
	}
	return nil
}
