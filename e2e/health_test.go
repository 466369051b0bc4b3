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

// TestUnhealthyWorkers: a stopped worker is replaced once NotReady past
// nodeNotReadyTimeout; when 60% of the workers stop at once, remediation
// halts, says why, deletes nothing, and resumes when they come back.
func TestUnhealthyWorkers(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-health")
	spec := framework.SpecYAML(name, "", framework.Pools(framework.Pool("workers", 5))+
		"  health:\n    nodeNotReadyTimeout: 20s\n    maxUnhealthy: 40%\n")
	c := framework.Up(t, name, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	framework.Eventually(t, 5*time.Minute, "5 Ready workers", func() (bool, string) {
		_, ready, _ := c.PoolNodes(ctx, "workers")
		return ready == 5, fmt.Sprintf("%d Ready", ready)
	})

	t.Run("a stopped worker is replaced after nodeNotReadyTimeout", func(t *testing.T) {
		victim := framework.PoolContainers(t, name, "workers")[0]
		framework.Docker(t, "stop", victim)
		took := framework.Eventually(t, 6*time.Minute, "the stopped worker replaced", func() (bool, string) {
			got := framework.PoolContainers(t, name, "workers")
			names, ready, _ := c.PoolNodes(ctx, "workers")
			return !slices.Contains(got, victim) && !slices.Contains(names, victim) && len(got) == 5 && ready == 5,
				fmt.Sprintf("containers %v, nodes %v (%d Ready)", got, names, ready)
		})
		t.Logf("stopped worker replaced and its replacement Ready in %s", took.Round(time.Second))
	})

	t.Run("60% of workers stopped halts remediation without a runaway", func(t *testing.T) {
		workers := framework.PoolContainers(t, name, "workers")
		stopped := workers[:3]
		framework.Docker(t, append([]string{"stop"}, stopped...)...)
		framework.Eventually(t, 4*time.Minute, "remediation to halt", func() (bool, string) {
			st, err := c.Status(ctx)
			if err != nil {
				return false, err.Error()
			}
			cond := st.Condition(v1alpha1.ConditionRemediationAllowed)
			return cond != nil && cond.Status == "False", fmt.Sprintf("%+v", cond)
		})
		events, err := c.Client.CoreV1().Events(v1alpha1.DefaultNamespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=RemediationHalted"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(events.Items, func(e corev1.Event) bool { return strings.Contains(e.Message, "remediation halted") }) {
			t.Error("no Event says remediation halted")
		}
		// Well past the timeout, nothing has been deleted or added.
		time.Sleep(40 * time.Second)
		if got := framework.PoolContainers(t, name, "workers"); !slices.Equal(sortedCopy(got), sortedCopy(workers)) {
			t.Fatalf("workers changed while remediation was halted: %v → %v", workers, got)
		}

		framework.Docker(t, append([]string{"start"}, stopped...)...)
		framework.Eventually(t, 5*time.Minute, "recovery", func() (bool, string) {
			st, err := c.Status(ctx)
			if err != nil {
				return false, err.Error()
			}
			_, ready, _ := c.PoolNodes(ctx, "workers")
			cond := st.Condition(v1alpha1.ConditionRemediationAllowed)
			return ready == 5 && cond != nil && cond.Status == "True", fmt.Sprintf("%d Ready, %+v", ready, cond)
		})
	})
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
