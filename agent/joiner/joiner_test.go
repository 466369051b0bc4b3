package joiner

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/testenv"
	"github.com/seedhq/seed/providers"
)

var shared testenv.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// demoCluster publishes the cluster-info a join reads and returns the spec
// of a cluster "demo" with one pool of workers.
func demoCluster(t *testing.T, env *testenv.Env) *v1alpha1.Cluster {
	t.Helper()
	info := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: metav1.NamespacePublic},
		Data: map[string]string{"kubeconfig": `apiVersion: v1
kind: Config
clusters:
- name: ""
  cluster:
    server: https://demo-control-plane:6443
    certificate-authority-data: ` + base64.StdEncoding.EncodeToString(env.Config.CAData) + `
`},
	}
	if _, err := env.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Create(t.Context(), info, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	spec, err := v1alpha1.Load([]byte(`apiVersion: `+v1alpha1.APIVersion+`
kind: Cluster
metadata: {name: demo}
spec:
  kubernetesVersion: `+v1alpha1.DefaultKubernetesVersion+`
  provider: {docker: {}}
  nodePools: [{name: workers, replicas: 1}]
`), v1alpha1.ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// Whether a joining machine's kubeadm pulls Kubernetes' images is what the
// provider declares, not which provider the spec names.
func TestJoinPullsImagesUnlessTheProviderPreloadsThem(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	spec := demoCluster(t, env)
	for _, c := range []struct {
		name string
		caps func() providers.Capabilities
		want string
	}{
		{"preloaded images", func() providers.Capabilities { return providers.Capabilities{PreloadedImages: true} }, "imagePullPolicy: Never"},
		{"stock machines", func() providers.Capabilities { return providers.Capabilities{StagesImages: true} }, "imagePullPolicy: IfNotPresent"},
		{"no provider known yet", nil, "imagePullPolicy: IfNotPresent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := Joiner{Client: env.Client, Capabilities: c.caps}
			b, err := j.Bootstrap(ctx, spec, providers.MachineSpec{Name: "demo-workers-abcde", Pool: "workers", Role: providers.RoleWorker,
				KubernetesVersion: v1alpha1.DefaultKubernetesVersion})
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for _, f := range b.Files {
				all.Write(f.Content)
			}
			if !strings.Contains(all.String(), c.want) {
				t.Errorf("the join's files do not say %q:\n%s", c.want, &all)
			}
		})
	}
}

// The joins of a burst of machines share one token while the Share's
// window lasts; the next burst gets a new one.
func TestJoinsOfABurstShareOneToken(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	spec := demoCluster(t, env)
	tokens := func() int {
		list, err := env.Client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeBootstrapToken)})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	j := Joiner{Client: env.Client, Share: NewShare(30 * time.Second), Now: func() time.Time { return now }}
	join := func(name string) string {
		b, err := j.Bootstrap(ctx, spec, providers.MachineSpec{Name: name, Pool: "workers", Role: providers.RoleWorker,
			KubernetesVersion: v1alpha1.DefaultKubernetesVersion})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range b.Files {
			if _, token, ok := strings.Cut(string(f.Content), "token: "); ok {
				token, _, _ = strings.Cut(token, "\n")
				return token
			}
		}
		t.Fatalf("no token in the join of %s", name)
		return ""
	}
	before := tokens()
	first := join("demo-workers-aaaaa")
	for _, name := range []string{"demo-workers-bbbbb", "demo-workers-ccccc"} {
		now = now.Add(10 * time.Second)
		if got := join(name); got != first {
			t.Errorf("machine %s joins with another token than the first of its burst", name)
		}
	}
	if got := tokens() - before; got != 1 {
		t.Errorf("a burst of 3 joins made %d tokens, want 1", got)
	}
	now = now.Add(time.Minute)
	if join("demo-workers-ddddd") == first {
		t.Error("a join after the window reuses the last burst's token")
	}
	if got := tokens() - before; got != 2 {
		t.Errorf("two bursts made %d tokens, want 2", got)
	}
}
