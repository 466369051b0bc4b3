package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/cluster"
	"github.com/seedhq/seed/providers"
)

// TestOrphansNeverJoinedAndPaused: a machine carrying the cluster's label
// that the agent did not plan is removed after the grace period; a machine
// that never joins is replaced after nodeStartupTimeout; a paused spec
// acts on nothing.
func TestOrphansNeverJoinedAndPaused(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-house")
	spec := func(paused bool) string {
		return framework.SpecYAML(name, "", fmt.Sprintf("  paused: %t\n", paused)+framework.Pools(framework.Pool("workers", 2))+
			"  health:\n    nodeStartupTimeout: 40s\n")
	}
	c := framework.Up(t, name, spec(false))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	setAgentArgs(ctx, t, c, "--orphan-grace-period=20s")
	framework.Eventually(t, 5*time.Minute, "2 Ready workers", func() (bool, string) {
		_, ready, _ := c.PoolNodes(ctx, "workers")
		return ready == 2, fmt.Sprintf("%d Ready", ready)
	})
	_, _, p, err := cluster.Open(ctx, c.SpecFile, "", "")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("paused: a surplus machine that never joins is left alone", func(t *testing.T) {
		c.EditSpec(ctx, t, spec(true))
		framework.Eventually(t, time.Minute, "the Paused condition", func() (bool, string) {
			st, err := c.Status(ctx)
			if err != nil {
				return false, err.Error()
			}
			cond := st.Condition(v1alpha1.ConditionPaused)
			return cond != nil && cond.Status == "True", fmt.Sprintf("%+v", cond)
		})
		// A machine of the pool whose bootstrap does nothing: it will never join.
		if _, err := p.CreateMachine(ctx, providers.MachineSpec{Name: name + "-workers-nojoin", Pool: "workers", Role: providers.RoleWorker,
			KubernetesVersion: v1alpha1.DefaultKubernetesVersion, Bootstrap: providers.Bootstrap{Script: "#!/bin/sh\nexit 0\n"}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(45 * time.Second) // past nodeStartupTimeout
		if got := framework.PoolContainers(t, name, "workers"); len(got) != 3 {
			t.Fatalf("paused agent acted: workers %v", got)
		}
	})

	t.Run("unpaused: the machine that never joined is removed", func(t *testing.T) {
		c.EditSpec(ctx, t, spec(false))
		framework.Eventually(t, 3*time.Minute, "the never-joined machine to go", func() (bool, string) {
			got := framework.PoolContainers(t, name, "workers")
			_, ready, _ := c.PoolNodes(ctx, "workers")
			return !slices.Contains(got, name+"-workers-nojoin") && len(got) == 2 && ready == 2, fmt.Sprintf("workers %v", got)
		})
	})

	t.Run("a machine the agent did not plan is removed after the grace period", func(t *testing.T) {
		stray := name + "-stray"
		if _, err := p.CreateMachine(ctx, providers.MachineSpec{Name: stray, Role: providers.RoleWorker,
			KubernetesVersion: v1alpha1.DefaultKubernetesVersion, Bootstrap: providers.Bootstrap{Script: "#!/bin/sh\nexit 0\n"}}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		framework.Eventually(t, 3*time.Minute, "the stray machine to go", func() (bool, string) {
			all, _, _ := framework.Owned(t, name)
			out := framework.Docker(t, "ps", "-a", "--format", "{{.Names}}", "--filter", "name="+stray)
			// The control plane, two workers and the load balancer.
			return out == "" && len(all) == 4, fmt.Sprintf("owned containers %v", all)
		})
		if took := time.Since(start); took < 15*time.Second {
			t.Errorf("stray removed after %s, before its grace period", took)
		}
		if !eventWith(ctx, t, c, "DeletingMachine", stray) {
			t.Error("no DeletingMachine event names the stray machine with a reason")
		}
	})
}

// TestBlockedDrainLeadersAndMetrics: a drain blocked by a PodDisruptionBudget
// is reported; with two agent replicas only the leader acts and killing it
// hands over; /metrics shows the actions taken.
func TestBlockedDrainLeadersAndMetrics(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-lead")
	spec := func(n int) string {
		return framework.SpecYAML(name, "", framework.Pools(framework.Pool("workers", n))+"  rollout:\n    drainTimeout: 45s\n")
	}
	c := framework.Up(t, name, spec(1))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	framework.Eventually(t, 5*time.Minute, "1 Ready worker", func() (bool, string) {
		_, ready, _ := c.PoolNodes(ctx, "workers")
		return ready == 1, fmt.Sprintf("%d Ready", ready)
	})

	t.Run("a drain blocked by a PodDisruptionBudget is reported, then gives way after drainTimeout", func(t *testing.T) {
		worker := framework.PoolContainers(t, name, "workers")[0]
		probe := framework.BuildProbeImage(t)
		framework.LoadImage(t, worker, probe)
		labels := map[string]string{"app": "guarded"}
		if _, err := c.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "guarded", Labels: labels},
			Spec: corev1.PodSpec{NodeName: worker, Containers: []corev1.Container{{Name: "probe", Image: probe,
				ImagePullPolicy: corev1.PullNever, Args: []string{"serve"}}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		one := intstr.FromInt32(1)
		if _, err := c.Client.PolicyV1().PodDisruptionBudgets("default").Create(ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "guarded"},
			Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 2*time.Minute, "the pod Ready", func() (bool, string) {
			return framework.PodsReady(ctx, c.Client, "default", "app=guarded")
		})
		c.EditSpec(ctx, t, spec(0))
		framework.Eventually(t, 2*time.Minute, "status to name the blocking budget", func() (bool, string) {
			st, err := c.Status(ctx)
			if err != nil {
				return false, err.Error()
			}
			return len(st.Drains) == 1 && slices.Contains(st.Drains[0].BlockedBy, "default/guarded"), fmt.Sprintf("drains %+v", st.Drains)
		})
		if !eventWith(ctx, t, c, "DrainBlocked", "default/guarded") {
			t.Error("no DrainBlocked event names the budget")
		}
		if got := framework.PoolContainers(t, name, "workers"); len(got) != 1 {
			t.Errorf("the worker went despite its budget: %v", got)
		}
		// The documented policy: after drainTimeout the machine goes anyway.
		framework.Eventually(t, 3*time.Minute, "the worker deleted after drainTimeout", func() (bool, string) {
			got := framework.PoolContainers(t, name, "workers")
			return len(got) == 0, fmt.Sprintf("workers %v", got)
		})
		if !eventWith(ctx, t, c, "DrainTimedOut", "default/guarded") {
			t.Error("no DrainTimedOut event names the budget")
		}
		if err := c.Client.PolicyV1().PodDisruptionBudgets("default").Delete(ctx, "guarded", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("two replicas: only the leader acts, and killing it hands over", func(t *testing.T) {
		scaleAgent(ctx, t, c, 2)
		framework.Eventually(t, 3*time.Minute, "2 agent pods Ready", func() (bool, string) {
			pods, _ := c.Client.CoreV1().Pods(v1alpha1.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=seed-agent"})
			ok, msg := framework.PodsReady(ctx, c.Client, v1alpha1.DefaultNamespace, "app.kubernetes.io/name=seed-agent")
			return ok && len(pods.Items) == 2, msg
		})
		leader := leaseHolder(ctx, t, c)
		c.EditSpec(ctx, t, spec(1))
		framework.Eventually(t, 3*time.Minute, "a worker, made by the leader", func() (bool, string) {
			st, err := c.Status(ctx)
			_, ready, _ := c.PoolNodes(ctx, "workers")
			return err == nil && ready == 1 && st.Agent == leader, fmt.Sprintf("%d Ready, status by %s, leader %s", ready, st.Agent, leader)
		})
		zero := int64(0)
		if err := c.Client.CoreV1().Pods(v1alpha1.DefaultNamespace).Delete(ctx, leader, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		framework.Eventually(t, 2*time.Minute, "another replica to lead and act", func() (bool, string) {
			st, err := c.Status(ctx)
			now := leaseHolder(ctx, t, c)
			return err == nil && now != leader && st.Agent == now, fmt.Sprintf("lease %s, status by %s", now, st.Agent)
		})
		t.Logf("leadership handed over and the new leader reporting %s after the leader was killed", time.Since(start).Round(time.Second))
		c.EditSpec(ctx, t, spec(2))
		framework.Eventually(t, 3*time.Minute, "the new leader to scale to 2", func() (bool, string) {
			_, ready, _ := c.PoolNodes(ctx, "workers")
			return ready == 2, fmt.Sprintf("%d Ready", ready)
		})
	})

	t.Run("metrics show the actions taken", func(t *testing.T) {
		// Through the API server's proxy, as a user without access to the
		// pod network would look.
		body, err := c.Client.CoreV1().Pods(v1alpha1.DefaultNamespace).ProxyGet("http", leaseHolder(ctx, t, c), "10360", "/metrics", nil).DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`seed_actions_total{action="Create",result="success"}`, "seed_reconcile_duration_seconds_count", `seed_provider_call_duration_seconds_count{method="ListMachines",provider="docker"}`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

func eventWith(ctx context.Context, t *testing.T, c *framework.Cluster, reason, text string) bool {
	t.Helper()
	events, err := c.Client.CoreV1().Events(v1alpha1.DefaultNamespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + reason})
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(events.Items, func(e corev1.Event) bool { return strings.Contains(e.Message, text) })
}

func leaseHolder(ctx context.Context, t *testing.T, c *framework.Cluster) string {
	t.Helper()
	l, err := c.Client.CoordinationV1().Leases(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.LeaseName, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func scaleAgent(ctx context.Context, t *testing.T, c *framework.Cluster, n int) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
	if _, err := c.Client.AppsV1().Deployments(v1alpha1.DefaultNamespace).Patch(ctx, "seed-agent", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// setAgentArgs adds arguments to the agent's container and waits for the
// rollout, as an operator tuning the agent would.
func setAgentArgs(ctx context.Context, t *testing.T, c *framework.Cluster, args ...string) {
	t.Helper()
	d, err := c.Client.AppsV1().Deployments(v1alpha1.DefaultNamespace).Get(ctx, "seed-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(d.Spec.Template.Spec.Containers[0].Args), args...)
	raw, _ := json.Marshal(all)
	patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":"agent","args":%s}]}}}}`, raw)
	if _, err := c.Client.AppsV1().Deployments(v1alpha1.DefaultNamespace).Patch(ctx, "seed-agent", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 3*time.Minute, "the agent rollout", func() (bool, string) {
		d, err := c.Client.AppsV1().Deployments(v1alpha1.DefaultNamespace).Get(ctx, "seed-agent", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == *d.Spec.Replicas && s.ReadyReplicas == *d.Spec.Replicas && s.Replicas == *d.Spec.Replicas,
			fmt.Sprintf("%+v", s)
	})
}
