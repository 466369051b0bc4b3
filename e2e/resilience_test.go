package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

// TestAgentCrashesLeaveNoDuplicatesOrOrphans kills the agent's pod again and
// again while it scales up and down; afterwards exactly the desired machines
// exist.
func TestAgentCrashesLeaveNoDuplicatesOrOrphans(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-crash")
	spec := func(n int) string { return framework.SpecYAML(name, "", framework.Pools(framework.Pool("workers", n))) }
	c := framework.Up(t, name, spec(0))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	for _, target := range []int{3, 1} {
		c.EditSpec(ctx, t, spec(target))
		for i := range 3 {
			time.Sleep(3 * time.Second)
			killAgent(ctx, t, c)
			t.Logf("killed the agent (%d) while scaling to %d", i+1, target)
		}
		took := framework.Eventually(t, 6*time.Minute, fmt.Sprintf("%d Ready workers", target), func() (bool, string) {
			got := framework.PoolContainers(t, name, "workers")
			names, ready, _ := c.PoolNodes(ctx, "workers")
			return len(got) == target && len(names) == target && ready == target,
				fmt.Sprintf("containers %v, nodes %v (%d Ready)", got, names, ready)
		})
		t.Logf("converged to %d workers %s after the last kill", target, took.Round(time.Second))
		// Stays there: nothing half-made is finished twice later.
		time.Sleep(10 * time.Second)
		if got := framework.PoolContainers(t, name, "workers"); len(got) != target {
			t.Fatalf("after settling: containers %v, want %d", got, target)
		}
		all, _, _ := framework.Owned(t, name)
		if len(all) != target+2 {
			t.Errorf("the cluster owns %d containers, want %d workers + the control plane + the load balancer", len(all), target)
		}
	}
}

func killAgent(ctx context.Context, t *testing.T, c *framework.Cluster) {
	t.Helper()
	zero := int64(0)
	pods, err := c.Client.CoreV1().Pods(v1alpha1.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=seed-agent"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		_ = c.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	}
}

// TestBadInputOnALiveCluster: each invalid edit is rejected with a Warning
// Event and a status error naming the field; the cluster is untouched; a
// fix resumes reconciling.
func TestBadInputOnALiveCluster(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-bad")
	good := func(n int, extra ...string) string {
		return framework.SpecYAML(name, "", framework.Pools(framework.Pool("workers", n, extra...)))
	}
	c := framework.Up(t, name, good(1))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	framework.Eventually(t, 5*time.Minute, "1 Ready worker", func() (bool, string) {
		_, ready, _ := c.PoolNodes(ctx, "workers")
		return ready == 1, fmt.Sprintf("%d Ready", ready)
	})
	before := framework.PoolContainers(t, name, "workers")

	cases := []struct{ what, spec, field string }{
		{"invalid YAML", "spec: [unclosed", "line"},
		{"unknown field", strings.Replace(good(1), "replicas:", "replica:", 1), "spec.nodePools[0].replica"},
		{"negative replicas", good(-2), "spec.nodePools[0].replicas"},
		{"replicas on an autoscaled pool", good(5, "minReplicas: 1", "maxReplicas: 3"), "spec.nodePools[0].replicas"},
		{"version downgrade", strings.Replace(good(1), v1alpha1.DefaultKubernetesVersion, "v1.33.6", 1), "spec.kubernetesVersion"},
		{"minor version skip", strings.Replace(good(1), v1alpha1.DefaultKubernetesVersion, "v1.36.0", 1), "spec.kubernetesVersion"},
		{"two providers", strings.Replace(good(1), "docker: {}", "docker: {}\n    aws: {region: eu-west-1}", 1), "spec.provider"},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			rv := c.EditSpec(ctx, t, tc.spec)
			framework.Eventually(t, time.Minute, "a Warning event and a status error naming "+tc.field, func() (bool, string) {
				st, err := c.Status(ctx)
				if err != nil {
					return false, err.Error()
				}
				events, err := c.Client.CoreV1().Events(v1alpha1.DefaultNamespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=InvalidSpec"})
				if err != nil {
					return false, err.Error()
				}
				evOK := slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
					return e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, tc.field)
				})
				// The status must be about this edit, not the previous one.
				return evOK && st.ObservedSpecVersion == rv && strings.Contains(st.SpecError, tc.field), "status spec error: " + st.SpecError
			})
			if got := framework.PoolContainers(t, name, "workers"); !slices.Equal(got, before) {
				t.Errorf("workers changed under a rejected spec: %v → %v", before, got)
			}
		})
	}

	t.Run("fixing the spec resumes reconciling", func(t *testing.T) {
		c.EditSpec(ctx, t, good(2))
		framework.Eventually(t, 5*time.Minute, "2 Ready workers", func() (bool, string) {
			_, ready, _ := c.PoolNodes(ctx, "workers")
			st, _ := c.Status(ctx)
			return ready == 2 && st != nil && st.SpecError == "", fmt.Sprintf("%d Ready", ready)
		})
	})
}
