package cluster

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/fake"
)

const planSpec = `apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata:
  name: lab
spec:
  kubernetesVersion: v1.34.2
  provider:
    docker: {}
  nodePools:
  - name: workers
    replicas: %d
`

func specWith(replicas string) []byte {
	return []byte(strings.Replace(planSpec, "%d", replicas, 1))
}

// liveCluster puts in the API server what a running cluster of one control
// plane and one worker shows: its Nodes, the agent's status with the spec
// it applied, a ledger; and returns the fake provider holding the machines.
func liveCluster(t *testing.T, client kubernetes.Interface, ledger map[string]string) *fake.Provider {
	t.Helper()
	ctx := t.Context()
	ns := v1alpha1.DefaultNamespace
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	p := fake.New(nil)
	now := time.Now().Add(-time.Hour)
	for _, m := range []providers.Machine{
		{Name: "lab-control-plane", Pool: v1alpha1.ControlPlanePool, Role: providers.RoleControlPlane, KubernetesVersion: "v1.34.2", CreatedAt: now},
		{Name: "lab-workers-a", Pool: "workers", Role: providers.RoleWorker, KubernetesVersion: "v1.34.2", CreatedAt: now},
	} {
		p.Add(m)
		labels := map[string]string{providers.LabelPool: m.Pool}
		if m.Role == providers.RoleControlPlane {
			labels[controlPlaneLabel] = ""
		}
		n, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Labels: labels}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.NodeInfo.KubeletVersion = "v1.34.2"
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now)}}
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.CoreV1().Nodes().Delete(context.Background(), m.Name, metav1.DeleteOptions{}) })
	}
	for name, data := range map[string]map[string]string{
		v1alpha1.StatusConfigMap: {v1alpha1.StatusKey: "agent: agent-0\n", v1alpha1.AppliedSpecKey: string(specWith("1"))},
		v1alpha1.LedgerConfigMap: ledger,
	} {
		// Other tests of the package leave their own behind.
		if err := client.CoreV1().ConfigMaps(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.CoreV1().ConfigMaps(ns).Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	return p
}

func snapshot(t *testing.T, client kubernetes.Interface, p *fake.Provider) string {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Get(t.Context(), v1alpha1.LedgerConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.ListMachines(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	return cm.ResourceVersion + " " + strings.Join(names, ",")
}

func TestPlanSpecShowsTheCreatesAScaleNeedsAndChangesNothing(t *testing.T) {
	env := shared.Env(t)
	p := liveCluster(t, env.Client, map[string]string{})
	before := snapshot(t, env.Client, p)
	pv, err := PlanSpec(t.Context(), PlanOptions{Config: env.Config, Spec: specWith("3"),
		NewProvider: func(context.Context, *v1alpha1.Cluster) (providers.Provider, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	var creates []string
	for _, a := range pv.Actions {
		creates = append(creates, a.Action+" "+a.Pool)
	}
	if !slices.Equal(creates, []string{"Create workers", "Create workers"}) || pv.RunningVersion != "v1.34.2" {
		t.Errorf("plan = %+v, want two creates in pool workers, checked against v1.34.2", pv)
	}
	if after := snapshot(t, env.Client, p); after != before || p.Calls(fake.MethodCreateMachines)+p.Calls(fake.MethodCreateMachine) != 0 {
		t.Errorf("seed plan changed something: ledger and machines %q before, %q after", before, after)
	}
	var out strings.Builder
	if err := PrintPreview(&out, pv, "table"); err != nil || strings.Count(out.String(), "Create ") != 2 {
		t.Errorf("table:\n%s%v", out.String(), err)
	}
}

func TestPlanSpecRejectsWhatTheAgentRejects(t *testing.T) {
	env := shared.Env(t)
	p := liveCluster(t, env.Client, map[string]string{})
	for _, tc := range []struct{ name, spec, want string }{
		{"a downgrade", strings.Replace(string(specWith("1")), "v1.34.2", "v1.33.13", 1), "spec.kubernetesVersion"},
		{"another provider", strings.Replace(string(specWith("1")), "docker: {}", "aws: {region: eu-west-1}", 1), "spec.provider"},
		{"a typo", strings.Replace(string(specWith("1")), "replicas", "replica", 1), `did you mean "replicas"`},
	} {
		_, err := PlanSpec(t.Context(), PlanOptions{Config: env.Config, Spec: []byte(tc.spec),
			NewProvider: func(context.Context, *v1alpha1.Cluster) (providers.Provider, error) { return p, nil }})
		if !v1alpha1.IsInvalidSpec(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want the agent's error about %s", tc.name, err, tc.want)
		}
	}
}

func TestPlanSpecResumesWhatTheLedgerRecords(t *testing.T) {
	env := shared.Env(t)
	rec := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	p := liveCluster(t, env.Client, map[string]string{
		"lab-workers-b": `{"op":"create","step":"create","pool":"workers","role":"worker","kubernetesVersion":"v1.34.2","recordedAt":"` + rec + `"}`,
	})
	pv, err := PlanSpec(t.Context(), PlanOptions{Config: env.Config, Spec: specWith("2"),
		NewProvider: func(context.Context, *v1alpha1.Cluster) (providers.Provider, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range pv.Actions {
		if a.Action == "Create" {
			t.Errorf("plan creates a machine although the ledger records one under way: %+v", pv.Actions)
		}
	}
}

func TestLoadImagesCopiesIntoEveryRunningMachineAndRecordsThemOnce(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	p := liveCluster(t, env.Client, map[string]string{})
	p.Add(providers.Machine{Name: "lab-workers-stopped", Pool: "workers", Role: providers.RoleWorker})
	p.SetPhase("lab-workers-stopped", providers.PhaseStopped)
	t.Cleanup(func() {
		_ = env.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Delete(context.Background(), v1alpha1.ImagesConfigMap, metav1.DeleteOptions{})
	})
	e := &fakeEngine{images: map[string]bool{"app:v1": true, "example.com/tool:v2": true}}
	for range 2 {
		if err := LoadImages(ctx, LoadImagesOptions{Config: env.Config, Provider: p, Engine: e,
			Refs: []string{"app:v1", "example.com/tool:v2"}, Timeout: 10 * time.Second, Out: &strings.Builder{}}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"docker.io/library/app:v1", "example.com/tool:v2"}
	for _, m := range []string{"lab-control-plane", "lab-workers-a"} {
		if got := p.Loaded(m); !slices.Equal(got, slices.Concat(want, want)) {
			t.Errorf("%s got %v, want %v twice", m, got, want)
		}
	}
	if got := p.Loaded("lab-workers-stopped"); len(got) != 0 {
		t.Errorf("a stopped machine was loaded: %v", got)
	}
	core, err := kube.NewCore(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := core.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.ImagesConfigMap)
	if err != nil || cm.Data[v1alpha1.ImagesKey] != "app:v1\nexample.com/tool:v2\n" {
		t.Fatalf("record = %q, %v", cm.Data, err)
	}
	if found, err := ForgetImage(ctx, env.Config, "docker.io/library/app:v1"); !found || err != nil {
		t.Errorf("ForgetImage = %t, %v", found, err)
	}
	if got, err := LoadedImages(ctx, env.Config); !slices.Equal(got, []string{"example.com/tool:v2"}) || err != nil {
		t.Errorf("after forgetting: %v, %v", got, err)
	}
	if found, err := ForgetImage(ctx, env.Config, "app:v1"); found || err != nil {
		t.Errorf("forgetting again = %t, %v; want not found", found, err)
	}
}
