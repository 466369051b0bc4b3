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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

const (
	// autoscaleType is the machine type of the autoscaled pools: one CPU
	// and 2 GiB, so a few hundred millicores decide how many pods a
	// machine holds (the CI host has 2 CPUs).
	autoscaleType = "1x2Gi"
	// pauseImage is kubeadm's pause image, which every node has.
	pauseImage  = "registry.k8s.io/pause:3.10.1"
	autoscaleNS = "default"
)

// TestAutoscaleFromPending: pods the scheduler cannot place grow an
// autoscaled pool from zero to as many machines as first-fit-decreasing
// packs them onto, every pod runs, each pod is told it triggered the
// scale-up, the new nodes offer exactly their machine type, and once the
// pods are gone the pool shrinks back to its minimum.
func TestAutoscaleFromPending(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-as-pending")
	spec := framework.SpecYAML(name, "", framework.Pools(framework.AutoscaledPool("general", 0, 3, "machineType: "+autoscaleType))+
		"  autoscaling:\n    scaleDownUnneededTime: 20s\n    scaleDownDelayAfterAdd: 20s\n")
	c := framework.Up(t, name, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if got := framework.PoolContainers(t, name, "general"); len(got) != 0 {
		t.Fatalf("pool general at minReplicas 0 has machines %v before any pod asks", got)
	}
	// Two 400m pods and the DaemonSets' pods fit a 1-CPU machine, three
	// never do: four pods need exactly two machines.
	requireDaemonSetCPU(ctx, t, c, 200)

	peak := newPoolPeak(name, "general")
	ok := t.Run("4 pods of 400m grow the pool from 0 to exactly 2 machines and all run", func(t *testing.T) {
		createDeployment(ctx, t, c, workload("web", 4, "400m", offControlPlane))
		pods := waitDeploymentReady(ctx, t, c, "web", 4, 5*time.Minute, peak)
		if got := framework.PoolContainers(t, name, "general"); len(got) != 2 || peak.max["general"] != 2 {
			t.Errorf("pool general: machines %v now, at most %d at once; want 2 (two 400m pods a 1-CPU machine)", got, peak.max["general"])
		}
		checkOnPool(ctx, t, c, pods, "general")
		checkTriggered(ctx, t, c, pods, "general")
		checkGrewFromZero(ctx, t, c, pods, "general")
		checkPoolSettled(ctx, t, c, "general", 2)
	})
	if !ok {
		return
	}

	t.Run("the new nodes offer exactly the machine type", func(t *testing.T) {
		names, _, err := c.PoolNodes(ctx, "general")
		if err != nil {
			t.Fatal(err)
		}
		cpu, mem := resource.MustParse("1"), resource.MustParse("2Gi")
		for _, n := range names {
			node, err := c.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			a := node.Status.Allocatable
			if a.Cpu().Cmp(cpu) != 0 || a.Memory().Cmp(mem) != 0 {
				t.Errorf("node %s allocatable cpu %s memory %s, want %s of machine type %s", n, a.Cpu(), a.Memory(), "1 and 2Gi", autoscaleType)
			}
		}
	})

	t.Run("with the pods gone each node is reported unneeded, then drained and removed after scaleDownUnneededTime", func(t *testing.T) {
		before, _, err := c.PoolNodes(ctx, "general")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		scaleDeployment(ctx, t, c, "web", 0)
		reported := map[string]bool{}
		took := framework.Eventually(t, 3*time.Minute, "pool general back to 0", func() (bool, string) {
			if st, err := c.Status(ctx); err == nil && st.Autoscaling != nil {
				for _, n := range st.Autoscaling.Nodes {
					if n.Pool == "general" && (n.State == "Unneeded" || n.State == "Removing") {
						reported[n.Node] = true
					}
				}
			}
			got := framework.PoolContainers(t, name, "general")
			names, _, err := c.PoolNodes(ctx, "general")
			if err != nil {
				return false, err.Error()
			}
			return len(got) == 0 && len(names) == 0, fmt.Sprintf("containers %v, nodes %v; %s", got, names, autoscaledNodes(ctx, c))
		})
		t.Logf("idle pool removed in %s (scaleDownUnneededTime 20s)", took.Round(time.Second))
		// The timer on the Node is kept to the second, so up to 1s early.
		if elapsed := time.Since(start); elapsed < 19*time.Second {
			t.Errorf("pool emptied %s after its pods went, before scaleDownUnneededTime 20s", elapsed.Round(time.Second))
		}
		for _, n := range before {
			if !reported[n] {
				t.Errorf("node %s was removed without the status reporting it unneeded", n)
			}
		}
		checkPoolSettled(ctx, t, c, "general", 0)
	})
}

// TestAutoscaleRouting: of two autoscaled pools, pods that tolerate batch's
// taint and select its label grow only batch, and pods that do neither
// grow only general, even when batch has room for them.
func TestAutoscaleRouting(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-as-route")
	// general comes first: of two equal pools the first wins a pod, so a
	// batch pod lands in batch only if its nodeSelector is honoured.
	spec := framework.SpecYAML(name, "", framework.Pools(
		framework.AutoscaledPool("general", 0, 2, "machineType: "+autoscaleType),
		framework.AutoscaledPool("batch", 0, 2, "machineType: "+autoscaleType, "labels: {role: batch}",
			"taints: [{key: dedicated, value: batch, effect: NoSchedule}]")))
	c := framework.Up(t, name, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// The 300m web pod must fit beside the 600m batch pod on a batch node,
	// so that only the taint keeps it off.
	requireDaemonSetCPU(ctx, t, c, 100)
	peak := newPoolPeak(name, "general", "batch")

	ok := t.Run("a pod tolerating and selecting batch grows only batch", func(t *testing.T) {
		createDeployment(ctx, t, c, workload("batch-job", 1, "600m", func(s *corev1.PodSpec) {
			s.NodeSelector = map[string]string{"role": "batch"}
			s.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "batch", Effect: corev1.TaintEffectNoSchedule}}
		}))
		pods := waitDeploymentReady(ctx, t, c, "batch-job", 1, 5*time.Minute, peak)
		checkOnPool(ctx, t, c, pods, "batch")
		checkTriggered(ctx, t, c, pods, "batch")
		if peak.max["general"] != 0 || peak.max["batch"] != 1 {
			t.Errorf("machines at most: general %d, batch %d; want 0 and 1", peak.max["general"], peak.max["batch"])
		}
	})
	if !ok {
		return
	}

	t.Run("a pod not tolerating batch grows only general, though batch has room", func(t *testing.T) {
		createDeployment(ctx, t, c, workload("web", 1, "300m", offControlPlane))
		pods := waitDeploymentReady(ctx, t, c, "web", 1, 5*time.Minute, peak)
		checkOnPool(ctx, t, c, pods, "general")
		checkTriggered(ctx, t, c, pods, "general")
		if peak.max["general"] != 1 || peak.max["batch"] != 1 {
			t.Errorf("machines at most: general %d, batch %d; want 1 and 1", peak.max["general"], peak.max["batch"])
		}
		checkPoolSettled(ctx, t, c, "general", 1)
		checkPoolSettled(ctx, t, c, "batch", 1)
	})
}

// TestAutoscaleExplainsUnfittable: a pod no pool can take creates no
// machine, and the status and an Event on the pod give each pool's reason:
// larger than a new machine of the pool, or the pool at maxReplicas.
func TestAutoscaleExplainsUnfittable(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-as-explain")
	// reserve's machines would see the whole host (2 CPUs on CI), but it
	// may have none.
	spec := framework.SpecYAML(name, "", framework.Pools(
		framework.AutoscaledPool("general", 0, 2, "machineType: "+autoscaleType),
		framework.AutoscaledPool("reserve", 0, 0)))
	c := framework.Up(t, name, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	requireDaemonSetCPU(ctx, t, c, 200)

	// huge is larger than any machine; medium only than general's, and
	// reserve, which has room for it, is at its maximum.
	want := map[string]map[string][]string{
		"huge":   {"general": {"InsufficientResources", "larger than a new machine of the pool: needs cpu"}, "reserve": {"InsufficientResources", "larger than a new machine of the pool: needs cpu"}},
		"medium": {"general": {"InsufficientResources", "larger than a new machine of the pool: needs cpu"}, "reserve": {"AtMaxReplicas", "at maxReplicas 0"}},
	}
	createPod(ctx, t, c, "huge", "64")
	createPod(ctx, t, c, "medium", "1500m")
	framework.Eventually(t, 2*time.Minute, "both pods explained in the status and in Events", func() (bool, string) {
		st, err := c.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		events, err := c.PodEvents(ctx, autoscaleNS, "NotTriggerScaleUp")
		if err != nil {
			return false, err.Error()
		}
		for pod := range want {
			if _, ok := framework.PendingPodStatus(st, autoscaleNS+"/"+pod); !ok || len(events[pod]) == 0 {
				return false, fmt.Sprintf("pod %s: listed %t, Events %q", pod, ok, events[pod])
			}
		}
		return true, ""
	})

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events, err := c.PodEvents(ctx, autoscaleNS, "NotTriggerScaleUp")
	if err != nil {
		t.Fatal(err)
	}
	for pod, pools := range want {
		ps, _ := framework.PendingPodStatus(st, autoscaleNS+"/"+pod)
		if ps.Verdict != "NoPool" {
			t.Errorf("pod %s: verdict %s (%s), want NoPool", pod, ps.Verdict, ps.Message)
		}
		for pool, w := range pools {
			i := slices.IndexFunc(ps.Pools, func(v v1alpha1.PoolVerdict) bool { return v.Pool == pool })
			if i < 0 {
				t.Errorf("pod %s: no reason for pool %s in %+v", pod, pool, ps.Pools)
				continue
			}
			if v := ps.Pools[i]; v.Reason != w[0] || !strings.HasPrefix(v.Message, w[1]) {
				t.Errorf("pod %s, pool %s: reason %s %q, want %s %q…", pod, pool, v.Reason, v.Message, w[0], w[1])
			}
			told := "pool " + pool + ": " + w[1]
			if !slices.ContainsFunc(events[pod], func(m string) bool {
				return strings.HasPrefix(m, "pod didn't trigger scale-up: no pool can take it: ") && strings.Contains(m, told)
			}) {
				t.Errorf("pod %s: no NotTriggerScaleUp Event says %q; Events: %q", pod, told, events[pod])
			}
		}
	}

	if d := st.Autoscaling.DecidedAt; time.Since(d) > 5*time.Minute {
		t.Errorf("status.autoscaling.decidedAt is %s: it should say when the decision it shows was made", d.Format(time.RFC3339))
	}

	// Another unfittable pod wakes the autoscaler: a later decision too
	// leaves both pools empty.
	createPod(ctx, t, c, "huge-too", "64")
	framework.Eventually(t, time.Minute, "a decision on pod huge-too", func() (bool, string) {
		st, err := c.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		v, ok := framework.PendingPodStatus(st, autoscaleNS+"/huge-too")
		return ok && v.Verdict == "NoPool", fmt.Sprintf("%+v (listed %t)", v, ok)
	})
	for _, pool := range []string{"general", "reserve"} {
		if got := framework.PoolContainers(t, name, pool); len(got) != 0 {
			t.Errorf("pool %s has machines %v for pods no machine of it can hold", pool, got)
		}
		checkPoolSettled(ctx, t, c, pool, 0)
	}
}

// TestAutoscaleDaemonSetOverhead: a new machine is sized for the DaemonSet
// pods it will run as well as the pending pods, so every pod, DaemonSet's
// and workload's, runs on the machines the first decision made.
func TestAutoscaleDaemonSetOverhead(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-as-ds")
	spec := framework.SpecYAML(name, "", framework.Pools(framework.AutoscaledPool("general", 0, 3, "machineType: "+autoscaleType)))
	c := framework.Up(t, name, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	// Without the 300m DaemonSet two 400m pods would share a 1-CPU machine;
	// with it each needs its own.
	requireDaemonSetCPU(ctx, t, c, 200)

	labels := map[string]string{"app": "overhead"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "overhead"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec("300m")},
		},
	}
	ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	if _, err := c.Client.AppsV1().DaemonSets(autoscaleNS).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 2*time.Minute, "the DaemonSet's pod on the control plane", func() (bool, string) {
		return framework.PodsReady(ctx, c.Client, autoscaleNS, "app=overhead")
	})

	peak := newPoolPeak(name, "general")
	createDeployment(ctx, t, c, workload("web", 2, "400m", offControlPlane))
	pods := waitDeploymentReady(ctx, t, c, "web", 2, 5*time.Minute, peak)
	if got := framework.PoolContainers(t, name, "general"); len(got) != 2 || peak.max["general"] != 2 {
		t.Errorf("pool general: machines %v now, at most %d at once; want 2 (one 400m pod beside 300m of DaemonSet a machine)", got, peak.max["general"])
	}
	checkOnPool(ctx, t, c, pods, "general")
	checkTriggered(ctx, t, c, pods, "general")
	// A pod told twice was packed where it did not fit and waited for a
	// second scale-up.
	events, err := c.PodEvents(ctx, autoscaleNS, "TriggeredScaleUp")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if len(events[p.Name]) != 1 {
			t.Errorf("pod %s triggered %d scale-ups, want 1: %q", p.Name, len(events[p.Name]), events[p.Name])
		}
	}
	framework.Eventually(t, 2*time.Minute, "the DaemonSet's pods Ready on every node and no pod Pending", func() (bool, string) {
		d, err := c.Client.AppsV1().DaemonSets(autoscaleNS).Get(ctx, "overhead", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pending, err := c.PendingPods(ctx)
		if err != nil {
			return false, err.Error()
		}
		return d.Status.DesiredNumberScheduled == 3 && d.Status.NumberReady == 3 && len(pending) == 0,
			fmt.Sprintf("DaemonSet %d desired, %d Ready; pending %v", d.Status.DesiredNumberScheduled, d.Status.NumberReady, pending)
	})
	checkPoolSettled(ctx, t, c, "general", 2)
}

// podSpec is a pause container requesting cpu and 64Mi.
func podSpec(cpu string) corev1.PodSpec {
	zero := int64(0)
	return corev1.PodSpec{
		TerminationGracePeriodSeconds: &zero,
		Containers: []corev1.Container{{Name: "app", Image: pauseImage, ImagePullPolicy: corev1.PullNever,
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Mi")}}}},
	}
}

// offControlPlane keeps a pod off the control plane, which has no taint
// and room of its own: only a pool's machines may hold it.
func offControlPlane(s *corev1.PodSpec) {
	s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.NodeSelectorOpDoesNotExist}},
		}}},
	}}
}

// workload is a Deployment of pause pods requesting cpu each.
func workload(name string, replicas int32, cpu string, edit func(*corev1.PodSpec)) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	spec := podSpec(cpu)
	edit(&spec)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// createPod creates a bare pause pod requesting cpu, kept off the
// control plane.
func createPod(ctx context.Context, t testing.TB, c *framework.Cluster, name, cpu string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: podSpec(cpu)}
	offControlPlane(&p.Spec)
	if _, err := c.Client.CoreV1().Pods(autoscaleNS).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createDeployment(ctx context.Context, t testing.TB, c *framework.Cluster, d *appsv1.Deployment) {
	t.Helper()
	if _, err := c.Client.AppsV1().Deployments(autoscaleNS).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func scaleDeployment(ctx context.Context, t testing.TB, c *framework.Cluster, name string, n int32) {
	t.Helper()
	s, err := c.Client.AppsV1().Deployments(autoscaleNS).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = n
	if _, err := c.Client.AppsV1().Deployments(autoscaleNS).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitDeploymentReady waits for n Ready pods of the Deployment, sampling
// the pools' machine counts meanwhile, and returns the pods.
func waitDeploymentReady(ctx context.Context, t testing.TB, c *framework.Cluster, name string, n int, timeout time.Duration, peak *poolPeak) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	took := framework.Eventually(t, timeout, fmt.Sprintf("%d Ready pods of %s", n, name), func() (bool, string) {
		peak.sample(t)
		list, err := c.Client.CoreV1().Pods(autoscaleNS).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, err.Error()
		}
		pods = list.Items
		ready := 0
		for i := range pods {
			if podReady(&pods[i]) {
				ready++
			}
		}
		return ready == n && len(pods) == n, fmt.Sprintf("%d pods, %d Ready; machines %v; %s", len(pods), ready, peak.last, autoscaledPending(ctx, c))
	})
	peak.sample(t)
	t.Logf("%d pods of %s Ready in %s; machines at most %v", n, name, took.Round(time.Second), peak.max)
	return pods
}

// poolPeak remembers the most machines each pool had at once while sampled.
type poolPeak struct {
	cluster   string
	max, last map[string]int
}

func newPoolPeak(cluster string, pools ...string) *poolPeak {
	p := &poolPeak{cluster: cluster, max: map[string]int{}, last: map[string]int{}}
	for _, pool := range pools {
		p.max[pool], p.last[pool] = 0, 0
	}
	return p
}

func (p *poolPeak) sample(t testing.TB) {
	t.Helper()
	for pool := range p.max {
		n := len(framework.PoolContainers(t, p.cluster, pool))
		p.last[pool] = n
		p.max[pool] = max(p.max[pool], n)
	}
}

// requireDaemonSetCPU fails the test when the cluster's DaemonSets
// request more cpu a node than maxMilli, which the test's arithmetic
// assumes (kube-proxy requests none, the pod network 10m).
func requireDaemonSetCPU(ctx context.Context, t testing.TB, c *framework.Cluster, maxMilli int64) {
	t.Helper()
	dss, err := c.Client.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	var each []string
	for _, ds := range dss.Items {
		var m int64
		for _, ct := range ds.Spec.Template.Spec.Containers {
			m += ct.Resources.Requests.Cpu().MilliValue()
		}
		total += m
		each = append(each, fmt.Sprintf("%s/%s %dm", ds.Namespace, ds.Name, m))
	}
	if total > maxMilli {
		t.Fatalf("the DaemonSets request %dm cpu a node (%s); this test's machine counts assume at most %dm", total, strings.Join(each, ", "), maxMilli)
	}
	t.Logf("DaemonSets request %dm cpu a node: %s", total, strings.Join(each, ", "))
}

// checkOnPool checks that each pod runs on a node of the pool.
func checkOnPool(ctx context.Context, t testing.TB, c *framework.Cluster, pods []corev1.Pod, pool string) {
	t.Helper()
	names, _, err := c.PoolNodes(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if !slices.Contains(names, p.Spec.NodeName) {
			t.Errorf("pod %s runs on %q, not on a node of pool %s %v", p.Name, p.Spec.NodeName, pool, names)
		}
	}
}

// checkTriggered checks that each pod was told it triggered a scale-up
// of the pool.
func checkTriggered(ctx context.Context, t testing.TB, c *framework.Cluster, pods []corev1.Pod, pool string) {
	t.Helper()
	events, err := c.PodEvents(ctx, autoscaleNS, "TriggeredScaleUp")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if !slices.ContainsFunc(events[p.Name], func(m string) bool {
			return strings.HasPrefix(m, "pod triggered scale-up of pool "+pool+": ")
		}) {
			t.Errorf("pod %s: no TriggeredScaleUp Event names pool %s; Events: %q", p.Name, pool, events[p.Name])
		}
	}
}

// checkGrewFromZero checks that a pod was told the pool grew from no
// machines.
func checkGrewFromZero(ctx context.Context, t testing.TB, c *framework.Cluster, pods []corev1.Pod, pool string) {
	t.Helper()
	events, err := c.PodEvents(ctx, autoscaleNS, "TriggeredScaleUp")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		for _, m := range events[p.Name] {
			if strings.HasPrefix(m, "pod triggered scale-up of pool "+pool+": 0 to ") {
				return
			}
		}
	}
	t.Errorf("no pod was told pool %s grew from 0 machines: %q", pool, events)
}

// checkPoolSettled waits for the autoscaler's status to show the pool
// with n machines, desired and current.
func checkPoolSettled(ctx context.Context, t testing.TB, c *framework.Cluster, pool string, n int32) {
	t.Helper()
	framework.Eventually(t, time.Minute, fmt.Sprintf("status: pool %s desired and current %d", pool, n), func() (bool, string) {
		st, err := c.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		p, ok := framework.AutoscaledPoolStatus(st, pool)
		return ok && p.Desired == n && p.Current == n, fmt.Sprintf("%+v (listed %t)", p, ok)
	})
}

// autoscaledPending summarises the status' pending pods, for messages.
func autoscaledPending(ctx context.Context, c *framework.Cluster) string {
	st, err := c.Status(ctx)
	if err != nil || st.Autoscaling == nil {
		return fmt.Sprintf("no autoscaling status (%v)", err)
	}
	var s []string
	for _, p := range st.Autoscaling.PendingPods {
		s = append(s, fmt.Sprintf("%s %s %s", p.Pod, p.Verdict, p.Message))
	}
	return fmt.Sprintf("pools %+v, pending [%s]", st.Autoscaling.Pools, strings.Join(s, "; "))
}

// autoscaledNodes summarises the status' nodes, for messages.
func autoscaledNodes(ctx context.Context, c *framework.Cluster) string {
	st, err := c.Status(ctx)
	if err != nil || st.Autoscaling == nil {
		return fmt.Sprintf("no autoscaling status (%v)", err)
	}
	var s []string
	for _, n := range st.Autoscaling.Nodes {
		s = append(s, fmt.Sprintf("%s %s %s", n.Node, n.State, n.Message))
	}
	return fmt.Sprintf("pools %+v, nodes [%s]", st.Autoscaling.Pools, strings.Join(s, "; "))
}
