package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/pkg/pki"
	"github.com/seedhq/seed/pkg/testenv"
	"github.com/seedhq/seed/providers"
)

var shared testenv.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// A user's typo in `kubectl edit` makes the agent reject the live spec; it
// keeps the cluster it adopted on the last valid one. `seed up` run again
// must see that the cluster is up, say the spec is rejected and why, and
// succeed at once: it changes nothing.
func TestUpAgainWithARejectedLiveSpecSucceedsAtOnceAndWarns(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	const name = "demo"
	cpName := ControlPlaneMachineName(name)

	c, raw, err := LoadSpec("", name)
	if err != nil {
		t.Fatal(err)
	}
	p := newRecorder(preloadedImages)
	o := UpOptions{
		Spec: c, SpecYAML: raw, Provider: p, AgentImage: "seed.local/agent:abc", ImageSource: localImages,
		KubeconfigPath: filepath.Join(t.TempDir(), "kubeconfig"), Timeout: 15 * time.Second,
	}

	// The cluster as the first `seed up` left it: a control-plane machine,
	// a kubeconfig context, the agent and its spec installed.
	p.Add(providers.Machine{Name: cpName, Pool: v1alpha1.ControlPlanePool, Role: providers.RoleControlPlane})
	admin, err := pki.AdminKubeconfig(name, env.Config.Host, env.Config.CAData, env.Config.CertData, env.Config.KeyData)
	if err != nil {
		t.Fatal(err)
	}
	if err := MergeKubeconfig(o.KubeconfigPath, admin); err != nil {
		t.Fatal(err)
	}
	if n, err := installAgent(ctx, env.Config, o); err != nil || n == 0 {
		t.Fatalf("installing the agent: %d objects created, %v", n, err)
	}

	// Then the user's bad edit, and the agent's report of it: the machine
	// it adopted, and why it rejects the spec now.
	const rejection = "spec.nodePools[0].replicas: must be at least 0, got -1"
	cms := env.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace)
	spec, err := cms.Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live := strings.Replace(string(raw), "nodePools: []", "nodePools: [{name: workers, replicas: -1}]", 1)
	spec.Data[v1alpha1.SpecKey] = live
	if _, err := cms.Update(ctx, spec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	putStatus(t, env, v1alpha1.ClusterStatus{
		SpecError: rejection,
		Machines:  []v1alpha1.MachineStatus{{Name: cpName, Pool: v1alpha1.ControlPlanePool, Managed: true}},
	})

	var progress strings.Builder
	start := time.Now()
	o.Progress = &progress
	res, err := Up(ctx, o)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Up = %v after %s, want success: the cluster is up and adopted\n%s", err, took.Round(time.Millisecond), &progress)
	}
	// Waiting would show as the wait's detail line; an adopted cluster is
	// not waited for at all.
	if strings.Contains(progress.String(), "agent rejected the spec:") {
		t.Errorf("Up waited on the rejected spec instead of seeing the cluster adopted:\n%s", &progress)
	}
	if res.Created || len(p.specs) != 0 {
		t.Errorf("Created %t, %d machines created: Up must change nothing", res.Created, len(p.specs))
	}
	if res.SpecError != rejection {
		t.Errorf("SpecError = %q, want the agent's %q", res.SpecError, rejection)
	}
	out := progress.String()
	if !strings.Contains(out, "Warning: The agent rejects the cluster's live spec") || !strings.Contains(out, rejection) {
		t.Errorf("progress does not warn that the live spec is rejected and why:\n%s", out)
	}
	cm, err := cms.Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data[v1alpha1.SpecKey] != live {
		t.Error("Up replaced the live spec; it must leave the user's edit for them to fix")
	}
}

// Before the hand-off, a spec the agent rejects is still a reason to wait
// (the user may fix it), and the wait says why.
func TestHandOffStateBeforeAdoption(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	client, err := kube.NewCore(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		status  v1alpha1.ClusterStatus
		adopted bool
		waiting string
	}{
		{"rejected before adopting", v1alpha1.ClusterStatus{SpecError: "bad\nworse"}, false, "agent rejected the spec: bad; worse"},
		{"an error while adopting", v1alpha1.ClusterStatus{LastError: "provider down"}, false, "agent reports: provider down"},
		{"adopted another machine", v1alpha1.ClusterStatus{Machines: []v1alpha1.MachineStatus{{Name: "other", Managed: true}}}, false, "agent has not adopted the machine yet"},
		{"adopted", v1alpha1.ClusterStatus{Machines: []v1alpha1.MachineStatus{{Name: "cp", Managed: true}}}, true, ""},
		{"adopted, spec rejected since", v1alpha1.ClusterStatus{SpecError: "bad", Machines: []v1alpha1.MachineStatus{{Name: "cp", Managed: true}}}, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			putStatus(t, env, c.status)
			h := handOffState(ctx, client, "cp")
			if h.adopted != c.adopted || h.waiting != c.waiting || h.specError != c.status.SpecError {
				t.Errorf("handOffState = %+v, want adopted %t, waiting %q, spec error %q", h, c.adopted, c.waiting, c.status.SpecError)
			}
		})
	}
}

// putStatus writes the agent's status report as the agent would.
func putStatus(t *testing.T, env *testenv.Env, st v1alpha1.ClusterStatus) {
	t.Helper()
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultNamespace}}
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	raw, err := yaml.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.StatusConfigMap}, Data: map[string]string{v1alpha1.StatusKey: string(raw)}}
	cms := env.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace)
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}
