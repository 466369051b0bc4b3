package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/seedhq/seed/e2e/framework"
)

// The workload the disruption tests keep serving: web, 4 replicas of the
// probe's `serve` under a PodDisruptionBudget of minAvailable 3 (one
// disruption at a time), behind a NodePort Service; and apiprobe, 2 pods
// probing the API server from inside the cluster, under a budget of
// minAvailable 1, so one of them always runs.
const (
	workloadNamespace = "disruption"
	webName           = "web"
	webReplicas       = 4
	webMinAvailable   = 3
	apiProbeName      = "apiprobe"
	webSelector       = "app=" + webName
)

// deployWorkload creates the workload and waits until it serves. The
// machines must have the probe image.
//
// The web pods are spread over hostnames with maxSkew 1 (DoNotSchedule,
// honouring taints, so a cordoned or not-yet-Ready node is no domain and a
// drain cannot deadlock the spread), on every node, the control plane
// included. With 3 nodes and 4 pods one node holds 2; that node is made a
// worker (the control plane is cordoned while the 4th pod is placed), so
// that worker's drain is certain to be held by the budget: its first pod
// may go, its second must wait until the first one's replacement is Ready.
// Readiness comes 5 s after a start, which gives that wait a length a
// test can see; and a pod serves for 5 s after it is told to stop
// (preStop sleep), while the endpoints drop it, as a well-behaved
// service does.
func deployWorkload(ctx context.Context, t testing.TB, c *framework.Cluster, probe string) (nodePort int32) {
	t.Helper()
	ns := workloadNamespace
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))

	// apiprobe writes its reports to a ConfigMap, with its own account.
	must(c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: apiProbeName}}, metav1.CreateOptions{}))
	must(c.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: apiProbeName},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{apiProbeName, "kube-root-ca.crt"}, Verbs: []string{"get", "patch"}}},
	}, metav1.CreateOptions{}))
	must(c.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: apiProbeName},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: apiProbeName},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: apiProbeName, Namespace: ns}},
	}, metav1.CreateOptions{}))
	must(c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: apiProbeName}}, metav1.CreateOptions{}))

	web := map[string]string{"app": webName}
	must(c.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: webName},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](webReplicas - 1),
			Selector: &metav1.LabelSelector{MatchLabels: web},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: web},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: web}, NodeTaintsPolicy: ptr.To(corev1.NodeInclusionPolicyHonor),
					}},
					Containers: []corev1.Container{{
						Name: "web", Image: probe, ImagePullPolicy: corev1.PullNever, Args: []string{"serve"},
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
							InitialDelaySeconds: 5, PeriodSeconds: 1, FailureThreshold: 1,
						},
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}},
					}},
				},
			},
		},
	}, metav1.CreateOptions{}))
	spread := waitWorkload(ctx, t, c, webReplicas-1)
	if len(spread) != webReplicas-1 {
		t.Fatalf("3 web pods on %d nodes, want one on each: %v", len(spread), spread)
	}

	// The 4th pod, with the control plane cordoned: a worker gets it.
	cordon := func(name string, on bool) {
		t.Helper()
		patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
		must(c.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}))
	}
	cps, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "node-role.kubernetes.io/control-plane"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cps.Items {
		cordon(n.Name, true)
	}
	must(c.Client.AppsV1().Deployments(ns).Patch(ctx, webName, types.MergePatchType,
		[]byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, webReplicas)), metav1.PatchOptions{}))
	spread = waitWorkload(ctx, t, c, webReplicas)
	for _, n := range cps.Items {
		cordon(n.Name, false)
	}
	doubled := ""
	for node, n := range spread {
		if n == 2 {
			doubled = node
		}
	}
	for _, n := range cps.Items {
		if spread[n.Name] != 1 || doubled == "" || doubled == n.Name {
			t.Fatalf("web pods per node %v: want 1 on the control plane %s and 2 on one worker", spread, n.Name)
		}
	}
	t.Logf("web pods per node: %v (the budget will hold %s's drain)", spread, doubled)

	svc, err := c.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: webName},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: web,
			Ports: []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb := func(name string, minAvailable int32) {
		t.Helper()
		must(c.Client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(minAvailable)),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
		}, metav1.CreateOptions{}))
	}
	pdb(webName, webMinAvailable)
	pdb(apiProbeName, 1)

	probeLabels := map[string]string{"app": apiProbeName}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	must(c.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: apiProbeName},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: probeLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: probeLabels},
				Spec: corev1.PodSpec{
					ServiceAccountName: apiProbeName,
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: probeLabels},
					}},
					Containers: []corev1.Container{{
						Name: apiProbeName, Image: probe, ImagePullPolicy: corev1.PullNever, Args: []string{"apiprobe=" + apiProbeName},
						Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: field("metadata.name")}, {Name: "NODE_NAME", ValueFrom: field("spec.nodeName")}},
					}},
				},
			},
		},
	}, metav1.CreateOptions{}))
	framework.Eventually(t, 3*time.Minute, "the API probe pods Ready", func() (bool, string) {
		return framework.PodsReady(ctx, c.Client, ns, "app="+apiProbeName)
	})
	return svc.Spec.Ports[0].NodePort
}

// waitWorkload waits for n Ready web pods and returns how many run on
// each node.
func waitWorkload(ctx context.Context, t testing.TB, c *framework.Cluster, n int) map[string]int {
	t.Helper()
	var spread map[string]int
	framework.Eventually(t, 3*time.Minute, fmt.Sprintf("%d Ready web pods", n), func() (bool, string) {
		pods, err := c.Client.CoreV1().Pods(workloadNamespace).List(ctx, metav1.ListOptions{LabelSelector: webSelector})
		if err != nil {
			return false, err.Error()
		}
		spread = map[string]int{}
		var not []string
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil {
				continue
			}
			if !podReady(p) {
				not = append(not, p.Name+" "+string(p.Status.Phase)+waitingReason(p))
				continue
			}
			spread[p.Spec.NodeName]++
		}
		ready := 0
		for _, k := range spread {
			ready += k
		}
		return ready == n && len(not) == 0, fmt.Sprintf("Ready per node %v; not Ready: %s", spread, strings.Join(not, ", "))
	})
	return spread
}

func waitingReason(p *corev1.Pod) string {
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Waiting != nil {
			return " (" + s.State.Waiting.Reason + ")"
		}
	}
	return ""
}
