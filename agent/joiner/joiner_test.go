package joiner

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/testenv"
	"github.com/seedhq/seed/providers"
)

var shared testenv.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// Whether a joining machine's kubeadm pulls Kubernetes' images is what the
// provider declares, not which provider the spec names.
func TestJoinPullsImagesUnlessTheProviderPreloadsThem(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
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
	if _, err := env.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Create(ctx, info, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
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
