package controller

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/record"

	"github.com/seedhq/seed/agent/backup"
	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

var locationGVR = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backupstoragelocations"}

// backupsPass runs the backups phase once with spec c, as the agent's
// ServiceAccount, and returns the status it reports.
func backupsPass(t *testing.T, r *Reconciler, h *harness, c *v1alpha1.Cluster) (*v1alpha1.BackupStatus, []error) {
	t.Helper()
	cm, err := h.admin.CoreV1().ConfigMaps(h.ns).Get(t.Context(), v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ps := &pass{now: time.Now(), spec: c, specCM: cm}
	r.ensureBackups(t.Context(), ps)
	return r.status.Backup, ps.errs
}

// spec.backup.enabled cannot pass validation until the gate exists, so the
// phase is driven with a spec built here.
func backupSpec(t *testing.T, store *v1alpha1.BackupStoreSpec) *v1alpha1.Cluster {
	t.Helper()
	c, err := v1alpha1.Load([]byte(specYAML(0)), v1alpha1.ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Spec.Backup.Enabled = true
	c.Spec.Backup.Store = store
	v1alpha1.SetDefaults(c) // enabled, maxAge and beforeUpgrade get theirs
	return c
}

// Against a real kube-apiserver, with the agent's own RBAC: the agent
// installs Velero pointed at the provider's store, then at a store the spec
// names with the user's keys; it reports the location's state in status, a
// condition and an Event; and turning backups off takes the report away.
func TestAgentInstallsVeleroAndKeepsItPointedAtTheStore(t *testing.T) {
	h := newHarness(t, specYAML(0))
	h.provider.SetCapabilities(providers.Capabilities{KeepsBackupStore: true})
	agentDyn, err := dynamic.NewForConfig(h.env.ServiceAccountConfig(h.ns, "seed-agent"))
	if err != nil {
		t.Fatal(err)
	}
	adminDyn, err := dynamic.NewForConfig(h.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	r := h.newReconciler("agent", func(o *Options) { o.Dynamic = agentDyn })
	ctx := t.Context()

	var st *v1alpha1.BackupStatus
	eventually(t, time.Minute, "Velero installed by the agent", func() bool {
		var errs []error
		st, errs = backupsPass(t, r, h, backupSpec(t, nil))
		if len(errs) > 0 {
			t.Fatalf("backups phase: %v", errs)
		}
		return st.Installed
	})
	if st.Store != "http://fake-backups:7070" {
		t.Errorf("status store %q, want the provider's", st.Store)
	}
	d, err := h.admin.AppsV1().Deployments("velero").Get(ctx, "velero", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment velero/velero: %v", err)
	}
	var images []string
	for _, c := range slices.Concat(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers) {
		images = append(images, c.Image)
	}
	slices.Sort(images)
	if want := slices.Sorted(slices.Values(manifests.VeleroImages())); !slices.Equal(images, want) {
		t.Errorf("Velero runs %v; the agent ships %v to control-plane machines", images, want)
	}
	checkStore := func(url string, creds []byte) {
		t.Helper()
		sec, err := h.admin.CoreV1().Secrets("velero").Get(ctx, backup.CredentialsSecret, metav1.GetOptions{})
		if err != nil || string(sec.Data["cloud"]) != string(creds) {
			t.Errorf("credentials Secret: %q, %v; want %q", sec.Data["cloud"], err, creds)
		}
		bsl, err := adminDyn.Resource(locationGVR).Namespace("velero").Get(ctx, manifests.VeleroLocation, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _ := unstructured.NestedString(bsl.Object, "spec", "config", "s3Url"); got != url {
			t.Errorf("location s3Url %q, want %q", got, url)
		}
	}
	checkStore("http://fake-backups:7070", backup.SharedCredentials("fake", "fake-secret"))
	// Velero's verdict on the store, as its server writes it (none runs
	// here); Velero is cluster-wide, so an earlier run may have left one.
	setLocation := func(phase, message string) {
		t.Helper()
		bsl, err := adminDyn.Resource(locationGVR).Namespace("velero").Get(ctx, manifests.VeleroLocation, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		unstructured.RemoveNestedField(bsl.Object, "status")
		if phase != "" {
			_ = unstructured.SetNestedField(bsl.Object, phase, "status", "phase")
			_ = unstructured.SetNestedField(bsl.Object, message, "status", "message")
		}
		if _, err := adminDyn.Resource(locationGVR).Namespace("velero").Update(ctx, bsl, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setLocation("", "")
	if _, errs := backupsPass(t, r, h, backupSpec(t, nil)); len(errs) > 0 {
		t.Fatal(errs)
	}
	if c := r.status.Condition(v1alpha1.ConditionBackupLocationAvailable); c == nil || c.Status != "False" || c.Reason != "NotYetValidated" {
		t.Errorf("condition before Velero checked the store: %+v", c)
	}

	// A store the spec names, with the user's keys.
	if _, err := h.admin.CoreV1().Secrets(h.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "my-store"},
		Data:       map[string][]byte{"cloud": []byte("[default]\naws_access_key_id=mine\naws_secret_access_key=s\n")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mine := &v1alpha1.BackupStoreSpec{Endpoint: "https://s3.example.test", Bucket: "mine", Region: "eu-west-1", CredentialsSecret: "my-store"}
	if st, errs := backupsPass(t, r, h, backupSpec(t, mine)); len(errs) > 0 || !st.Installed {
		t.Fatalf("backups phase with the spec's store: %+v, %v", st, errs)
	}
	checkStore("https://s3.example.test", []byte("[default]\naws_access_key_id=mine\naws_secret_access_key=s\n"))

	// A Secret without the key is named in status, not a silent no-op.
	missing := *mine
	missing.CredentialsSecret = "no-such-secret"
	if _, errs := backupsPass(t, r, h, backupSpec(t, &missing)); len(errs) == 0 {
		t.Error("a missing credentials Secret gave no error")
	}
	if c := r.status.Condition(v1alpha1.ConditionBackupLocationAvailable); c == nil || c.Status != "False" || c.Reason != "StoreUnknown" {
		t.Errorf("condition with a missing credentials Secret: %+v", c)
	}

	// What Velero finds reaches status, a condition and one Event.
	setLocation("Unavailable", "dial tcp: connection refused")
	rec := record.NewFakeRecorder(10)
	r.events = rec
	for range 2 {
		if st, errs := backupsPass(t, r, h, backupSpec(t, nil)); len(errs) > 0 || st.LocationPhase != "Unavailable" {
			t.Fatalf("backups phase: %+v, %v", st, errs)
		}
	}
	c := r.status.Condition(v1alpha1.ConditionBackupLocationAvailable)
	if c == nil || c.Status != "False" || c.Reason != backup.ReasonLocationUnavailable || c.Message != "Velero finds the store at http://fake-backups:7070 Unavailable: dial tcp: connection refused" {
		t.Errorf("condition with the location Unavailable: %+v", c)
	}
	if got := eventReasons(rec); !slices.Equal(got, []string{backup.ReasonLocationUnavailable}) {
		t.Errorf("events %v, want one %s", got, backup.ReasonLocationUnavailable)
	}

	setLocation("Available", "")
	if _, errs := backupsPass(t, r, h, backupSpec(t, nil)); len(errs) > 0 {
		t.Fatal(errs)
	}
	if c := r.status.Condition(v1alpha1.ConditionBackupLocationAvailable); c == nil || c.Status != "True" {
		t.Errorf("condition with the location Available: %+v", c)
	}

	// The agent's rights to install Velero stop at Velero's objects.
	dep := d.DeepCopy()
	dep.ObjectMeta = metav1.ObjectMeta{Name: "velero", Namespace: h.ns}
	if _, err := h.agent.AppsV1().Deployments(h.ns).Create(ctx, dep, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("the agent creating a Deployment outside Velero's namespace: %v, want Forbidden", err)
	}
	if err := h.agent.RbacV1().ClusterRoles().Delete(ctx, "seed-velero", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("the agent deleting Velero's ClusterRole: %v, want Forbidden", err)
	}

	// Backups off: no report, and Velero is left as it is.
	off := backupSpec(t, nil)
	off.Spec.Backup.Enabled = false
	if st, errs := backupsPass(t, r, h, off); st != nil || len(errs) > 0 || r.status.Condition(v1alpha1.ConditionBackupLocationAvailable) != nil {
		t.Errorf("backups off: status %+v, errors %v, condition %+v", st, errs, r.status.Condition(v1alpha1.ConditionBackupLocationAvailable))
	}
	if _, err := h.admin.AppsV1().Deployments("velero").Get(ctx, "velero", metav1.GetOptions{}); err != nil {
		t.Errorf("Velero removed when backups were turned off: %v", err)
	}
}

// Velero's images go to control-plane machines, where its Deployment
// runs, and only while backups are enabled.
func TestVeleroImagesGoToControlPlaneMachines(t *testing.T) {
	base := []string{"seed-agent:test"}
	for _, tc := range []struct {
		name    string
		enabled bool
		role    providers.Role
		want    []string
	}{
		{"control plane, backups on", true, providers.RoleControlPlane, append(slices.Clone(base), manifests.VeleroImages()...)},
		{"worker, backups on", true, providers.RoleWorker, base},
		{"control plane, backups off", false, providers.RoleControlPlane, base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &v1alpha1.Cluster{}
			c.Spec.Backup.Enabled = tc.enabled
			if got := imagesFor(base, c, tc.role); !slices.Equal(got, tc.want) {
				t.Errorf("imagesFor = %v, want %v", got, tc.want)
			}
			if !slices.Equal(base, []string{"seed-agent:test"}) {
				t.Errorf("imagesFor changed its input: %v", base)
			}
		})
	}
}

// eventReasons drains a FakeRecorder's Events ("Type Reason message")
// into their reasons.
func eventReasons(rec *record.FakeRecorder) []string {
	var got []string
	for {
		select {
		case e := <-rec.Events:
			if f := strings.Fields(e); len(f) > 1 {
				got = append(got, f[1])
			}
		default:
			return got
		}
	}
}
