package backup

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/testenv"
)

// Against a real kube-apiserver: the CRDs go first and the rest waits
// until they are Established; then everything is there, named as restores
// need it; applying again changes nothing; new keys reach the Secret; and
// Velero's identity may read and create anywhere but delete only its own.
func TestInstallerAppliesVeleroInOrderAndKeepsIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := testenv.Start(ctx, t)
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	inst := &Installer{Dynamic: dyn, Core: env.Client}
	store := Store{URL: "http://172.18.0.5:7070", Bucket: "seed-backups", Region: "us-east-1",
		Credentials: SharedCredentials("seedkey", "secret-1")}

	var h Health
	waited := false
	deadline := time.Now().Add(time.Minute)
	for {
		if h, err = inst.Ensure(ctx, store); err != nil {
			t.Fatal(err)
		}
		if h.Installed {
			break
		}
		waited = true
		if _, err := env.Client.AppsV1().Deployments("velero").Get(ctx, "velero", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("while waiting for %s: Deployment velero: %v; want nothing applied before the CRDs are Established", h.Waiting, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", h.Waiting)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("Installed; waited for the CRDs first: %v", waited)

	crds, _ := manifests.VeleroCRDs()
	for _, c := range crds {
		got, err := dyn.Resource(crdGVR).Get(ctx, c.GetName(), metav1.GetOptions{})
		if err != nil || !established(got) {
			t.Errorf("CRD %s: established %v, %v", c.GetName(), err == nil && established(got), err)
		}
	}
	d, err := env.Client.AppsV1().Deployments("velero").Get(ctx, "velero", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment velero/velero (restores need exactly this name): %v", err)
	}
	bsl, err := dyn.Resource(locationGVR).Namespace("velero").Get(ctx, manifests.VeleroLocation, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if prefix, _, _ := unstructured.NestedString(bsl.Object, "spec", "objectStorage", "prefix"); prefix != "velero" {
		t.Errorf("location prefix %q, want velero", prefix)
	}
	sec, err := env.Client.CoreV1().Secrets("velero").Get(ctx, CredentialsSecret, metav1.GetOptions{})
	if err != nil || string(sec.Data["cloud"]) != string(store.Credentials) {
		t.Fatalf("credentials Secret: %v, %v", sec, err)
	}
	// No Velero server runs here, so the location was never validated.
	if h.LocationPhase != "" {
		t.Errorf("location phase %q before any Velero ran", h.LocationPhase)
	}

	// Applying again changes nothing.
	if _, err := inst.Ensure(ctx, store); err != nil {
		t.Fatal(err)
	}
	again, err := env.Client.AppsV1().Deployments("velero").Get(ctx, "velero", metav1.GetOptions{})
	if err != nil || again.ResourceVersion != d.ResourceVersion {
		t.Errorf("Deployment rewritten by a second Ensure: resourceVersion %s → %s, %v", d.ResourceVersion, again.ResourceVersion, err)
	}
	// New keys (a store made again) reach the Secret.
	store.Credentials = SharedCredentials("seedkey", "secret-2")
	if _, err := inst.Ensure(ctx, store); err != nil {
		t.Fatal(err)
	}
	if sec, err := env.Client.CoreV1().Secrets("velero").Get(ctx, CredentialsSecret, metav1.GetOptions{}); err != nil || string(sec.Data["cloud"]) != string(store.Credentials) {
		t.Errorf("credentials after a change: %q, %v", sec.Data["cloud"], err)
	}

	// What Velero's ServiceAccount may do.
	velero, err := kubernetes.NewForConfig(env.ServiceAccountConfig("velero", "velero"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := velero.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("Velero cannot read Secrets to back them up: %v", err)
	}
	cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "restored", "namespace": "default"}}
	vdyn, err := dynamic.NewForConfig(env.ServiceAccountConfig("velero", "velero"))
	if err != nil {
		t.Fatal(err)
	}
	cmGVR := resources["ServiceAccount"].gvr.GroupVersion().WithResource("configmaps")
	if _, err := vdyn.Resource(cmGVR).Namespace("default").Create(ctx, &unstructured.Unstructured{Object: cm}, metav1.CreateOptions{}); err != nil {
		t.Errorf("Velero cannot create a ConfigMap to restore it: %v", err)
	}
	err = velero.CoreV1().ConfigMaps("default").Delete(ctx, "restored", metav1.DeleteOptions{})
	var status apierrors.APIStatus
	if !apierrors.IsForbidden(err) || !errors.As(err, &status) {
		t.Errorf("Velero deleting a ConfigMap outside its namespace = %v, want Forbidden", err)
	}
	if err := velero.CoreV1().Secrets("velero").Delete(ctx, CredentialsSecret, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("Velero cannot manage its own namespace: %v", err)
	}
}
