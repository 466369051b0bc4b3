package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/e2e/framework"
)

// TestScaleAndHeal: the cluster grows, shrinks and heals itself from edits
// of its ConfigMap alone, on real containers that join with kubeadm.
func TestScaleAndHeal(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-scale")
	spec := func(pools ...string) string { return framework.SpecYAML(name, "", framework.Pools(pools...)) }
	c := framework.Up(t, name, spec())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	poolExtras := []string{"labels: {tier: batch}", "taints: [{key: dedicated, value: batch, effect: NoSchedule}]"}
	t.Run("adding a pool of 3 creates 3 machines that join Ready with labels and taints", func(t *testing.T) {
		c.EditSpec(ctx, t, spec(framework.Pool("workers", 3, poolExtras...)))
		took := framework.Eventually(t, 5*time.Minute, "3 Ready workers", func() (bool, string) {
			names, ready, err := c.PoolNodes(ctx, "workers")
			if err != nil {
				return false, err.Error()
			}
			return ready == 3, fmt.Sprintf("%d nodes %v, %d Ready", len(names), names, ready)
		})
		t.Logf("0→3 workers Ready in %s", took.Round(time.Second))
		names, _, _ := c.PoolNodes(ctx, "workers")
		for _, n := range names {
			node, err := c.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if node.Labels["tier"] != "batch" {
				t.Errorf("node %s labels %v, want tier=batch", n, node.Labels)
			}
			if !slices.ContainsFunc(node.Spec.Taints, func(tt corev1.Taint) bool {
				return tt.Key == "dedicated" && tt.Value == "batch" && tt.Effect == corev1.TaintEffectNoSchedule
			}) {
				t.Errorf("node %s taints %v, want dedicated=batch:NoSchedule", n, node.Spec.Taints)
			}
		}
		if got := framework.PoolContainers(t, name, "workers"); len(got) != 3 {
			t.Errorf("worker containers: %v, want 3", got)
		}
	})

	t.Run("a removed worker container is replaced", func(t *testing.T) {
		victims := framework.PoolContainers(t, name, "workers")
		framework.Docker(t, "rm", "-f", victims[0])
		took := framework.Eventually(t, 5*time.Minute, "3 Ready workers again", func() (bool, string) {
			got := framework.PoolContainers(t, name, "workers")
			names, ready, _ := c.PoolNodes(ctx, "workers")
			return len(got) == 3 && !slices.Contains(got, victims[0]) && !slices.Contains(names, victims[0]) && ready == 3 && len(names) == 3,
				fmt.Sprintf("containers %v, nodes %v (%d Ready)", got, names, ready)
		})
		t.Logf("removed worker replaced and Ready in %s", took.Round(time.Second))
	})

	t.Run("lowering replicas to 1 drains and deletes two machines and their nodes", func(t *testing.T) {
		c.EditSpec(ctx, t, spec(framework.Pool("workers", 1, poolExtras...)))
		framework.Eventually(t, 5*time.Minute, "1 worker", func() (bool, string) {
			got := framework.PoolContainers(t, name, "workers")
			names, _, _ := c.PoolNodes(ctx, "workers")
			return len(got) == 1 && len(names) == 1, fmt.Sprintf("containers %v, nodes %v", got, names)
		})
	})

	t.Run("removing the pool removes its machines", func(t *testing.T) {
		c.EditSpec(ctx, t, spec())
		framework.Eventually(t, 5*time.Minute, "no workers", func() (bool, string) {
			got := framework.PoolContainers(t, name, "workers")
			names, _, _ := c.PoolNodes(ctx, "workers")
			return len(got) == 0 && len(names) == 0, fmt.Sprintf("containers %v, nodes %v", got, names)
		})
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.SpecError != "" || st.LastError != "" {
			t.Errorf("status errors: spec %q, last %q", st.SpecError, st.LastError)
		}
	})
}
