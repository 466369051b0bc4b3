package kube_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/pkg/testenv"
)

var shared testenv.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

func created(results []kube.Result) []string {
	var out []string
	for _, r := range results {
		if r.Created {
			out = append(out, r.Ref)
		}
	}
	return out
}

func TestCreateMissingCreatesOnlyWhatIsMissingAndNeverOverwrites(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)
	// Every kind the seed installs: namespaced and cluster-scoped, core,
	// apps and RBAC.
	objs, err := manifests.Agent(manifests.Params{Namespace: ns, AgentImage: "seed-agent:test", SpecYAML: []byte("kind: Cluster\n")})
	if err != nil {
		t.Fatal(err)
	}
	creator, err := kube.NewCreator(env.Config)
	if err != nil {
		t.Fatal(err)
	}

	results, err := creator.CreateMissing(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(objs) {
		t.Fatalf("%d results for %d objects", len(results), len(objs))
	}
	if results[0].Ref != "Namespace "+ns || results[0].Created {
		t.Errorf("the namespace exists already: got %+v", results[0])
	}
	if got := created(results); len(got) != len(objs)-1 {
		t.Errorf("created %v, want every object but the namespace", got)
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			if _, err := env.Client.RbacV1().ClusterRoles().Get(ctx, o.GetName(), metav1.GetOptions{}); err != nil {
				t.Errorf("cluster-scoped %s: %v", o.GetName(), err)
			}
		}
	}

	// The user edits the spec, and something deletes the Service.
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "seed-cluster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["cluster.yaml"] = "edited\n"
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.CoreV1().Services(ns).Delete(ctx, "seed-agent-metrics", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	results, err = creator.CreateMissing(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if got := created(results); len(got) != 1 || got[0] != "Service "+ns+"/seed-agent-metrics" {
		t.Errorf("second run created %v, want only the deleted Service", got)
	}
	cm, err = env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "seed-cluster", metav1.GetOptions{})
	if err != nil || cm.Data["cluster.yaml"] != "edited\n" {
		t.Errorf("the edited spec was overwritten: %v %v", cm.Data, err)
	}
}

func widget(ns, group string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": group + "/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": ns},
	}}
}

func TestCreateMissingFindsAKindServedAfterItsGroupWasFirstAskedFor(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)
	group := ns + ".seed.dev"
	creator, err := kube.NewCreator(env.Config)
	if err != nil {
		t.Fatal(err)
	}

	for _, obj := range []*unstructured.Unstructured{
		widget(ns, group),
		{Object: map[string]any{"apiVersion": "v1", "kind": "Gizmo", "metadata": map[string]any{"name": "g", "namespace": ns}}},
	} {
		if _, err := creator.CreateMissing(ctx, []*unstructured.Unstructured{obj}); !meta.IsNoMatchError(err) {
			t.Errorf("creating a %s the server does not serve: %v, want a no-match error", obj.GetKind(), err)
		}
	}

	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets." + group},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object"}},
			}},
		},
	}}
	if _, err := creator.CreateMissing(ctx, []*unstructured.Unstructured{crd}); err != nil {
		t.Fatal(err)
	}
	// The same Creator, which read the group before it existed, finds it
	// once the API server serves it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		results, err := creator.CreateMissing(ctx, []*unstructured.Unstructured{widget(ns, group)})
		if err == nil {
			if got := created(results); len(got) != 1 || got[0] != "Widget "+ns+"/w" {
				t.Errorf("created %v, want the Widget", got)
			}
			break
		}
		if !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			t.Fatalf("creating a Widget once its CRD exists: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCoreReadsNamespacesConfigMapsAndPodsBySelector(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)
	core, err := kube.NewCore(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if got, err := core.GetNamespace(ctx, ns); err != nil || got.Name != ns {
		t.Errorf("GetNamespace(%s) = %v, %v", ns, got.Name, err)
	}

	if _, err := core.GetConfigMap(ctx, ns, "status"); !apierrors.IsNotFound(err) {
		t.Errorf("GetConfigMap of a missing ConfigMap: %v, want not found", err)
	}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "status"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if cm, err := core.GetConfigMap(ctx, ns, "status"); err != nil || cm.Data["k"] != "v" {
		t.Errorf("GetConfigMap = %v, %v", cm.Data, err)
	}

	for _, name := range []string{"agent", "other"} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		}
		if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		selector string
		want     int
	}{{"app=agent", 1}, {"app=none", 0}, {"", 2}} {
		pods, err := core.ListPods(ctx, ns, tc.selector)
		if err != nil || len(pods.Items) != tc.want {
			t.Errorf("ListPods(%q) = %d pods, %v; want %d", tc.selector, len(pods.Items), err, tc.want)
		}
	}
}

func TestCoreIsNotReadyWithoutAServer(t *testing.T) {
	core, err := kube.NewCore(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := core.Ready(ctx); err == nil {
		t.Error("Ready succeeded with no server")
	}
}
