package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/imageref"
	"github.com/seedhq/seed/providers"
)

// TestLoadedImageOutlivesItsNode: an image built on the host is loaded with
// `seed load image`, a Deployment runs it without pulling, and when the
// worker's machine is deleted the agent's replacement machine runs the pod
// again with no second load. Bad input loads nothing.
func TestLoadedImageOutlivesItsNode(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-load")
	c := framework.Up(t, name, framework.SpecYAML(name, "", framework.Pools(framework.Pool("workers", 1))))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	framework.Eventually(t, 5*time.Minute, "1 Ready worker", func() (bool, string) {
		names, ready, err := c.PoolNodes(ctx, "workers")
		return ready == 1, fmt.Sprintf("nodes %v, %d Ready, %v", names, ready, err)
	})
	flags := []string{"--name", name, "--kubeconfig", c.Kubeconfig}
	load := func(args ...string) framework.Result {
		return framework.Seed(ctx, slices.Concat([]string{"load", "image"}, args, flags)...)
	}
	probe := framework.BuildProbeImage(t)

	// Bad input: nothing loaded, nothing recorded, each culprit named.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{probe, "Not/A:Ref"}, `"Not/A:Ref"`},
		{[]string{probe, "seed-e2e-no-such-image:v0"}, "seed-e2e-no-such-image:v0"},
	} {
		r := load(tc.args...)
		if r.Err == nil || !strings.Contains(r.Err.Error(), tc.want) || !strings.Contains(r.Err.Error(), "nothing loaded") {
			t.Errorf("seed load image %v: %v, want an error naming %s", tc.args, r.Err, tc.want)
		}
	}
	if r := load("--list"); r.Err != nil || r.Stdout != "" {
		t.Errorf("after bad input the record is %q (%v), want empty", r.Stdout, r.Err)
	}

	r := load(probe)
	if r.Err != nil {
		t.Fatalf("seed load image %s: %v\n%s", probe, r.Err, r.Stderr)
	}
	t.Logf("seed load image took %s:\n%s", r.Duration.Round(100*time.Millisecond), r.Stderr)
	if r := load(probe); r.Err != nil {
		t.Errorf("loading again: %v\n%s", r.Err, r.Stderr)
	}
	if r := load("--list"); r.Err != nil || strings.TrimSpace(r.Stdout) != probe {
		t.Errorf("seed load image --list = %q, %v; want %s once", r.Stdout, r.Err, probe)
	}
	ref, err := imageref.Parse(probe)
	if err != nil {
		t.Fatal(err)
	}
	// Every machine has it where the kubelet looks (crictl asks the CRI).
	// (The cluster's other containers, such as its load balancer, are not
	// machines.)
	machines := slices.Concat(framework.PoolContainers(t, name, v1alpha1.ControlPlanePool), framework.PoolContainers(t, name, "workers"))
	if len(machines) != 2 {
		t.Errorf("machines %v, want the control plane and one worker", machines)
	}
	for _, id := range machines {
		if out := framework.Docker(t, "exec", id, "crictl", "images", "-q", ref.Normalized()); out == "" {
			t.Errorf("machine %s: crictl lists no %s", id, ref.Normalized())
		}
	}

	labels := map[string]string{"app": "loaded"}
	replicas := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "loaded", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{providers.LabelPool: "workers"},
					Containers:   []corev1.Container{{Name: "probe", Image: probe, ImagePullPolicy: corev1.PullNever}},
				},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runningOn := func() (string, bool, string) {
		pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=loaded"})
		if err != nil {
			return "", false, err.Error()
		}
		var seen []string
		for _, p := range pods.Items {
			seen = append(seen, p.Name+"@"+p.Spec.NodeName+":"+string(p.Status.Phase)+waitingReason(&p))
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				return p.Spec.NodeName, true, ""
			}
		}
		return "", false, strings.Join(seen, ", ")
	}
	var first string
	framework.Eventually(t, 3*time.Minute, "the Deployment's pod running on the worker", func() (bool, string) {
		node, ok, why := runningOn()
		first = node
		return ok, why
	})

	// The machine goes, as a crashed host would; the agent replaces it.
	framework.Docker(t, "rm", "-f", first)
	t.Logf("deleted machine %s", first)
	took := framework.Eventually(t, 10*time.Minute, "the pod running again on a replacement machine", func() (bool, string) {
		node, ok, why := runningOn()
		return ok && node != first, fmt.Sprintf("on %q: %s", node, why)
	})
	t.Logf("the pod runs again %s after its machine was deleted, with no second load", took.Round(time.Second))

	r = load("--forget", probe)
	if r.Err != nil || !strings.Contains(r.Stdout, "keep it") {
		t.Errorf("seed load image --forget: %v\n%s", r.Err, r.Stdout)
	}
	if r := load("--list"); r.Err != nil || r.Stdout != "" {
		t.Errorf("after --forget the record is %q (%v), want empty", r.Stdout, r.Err)
	}
}
