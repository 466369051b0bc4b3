package bootstrap

import (
	"maps"
	"slices"
	"testing"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// A machine that runs no kubeadm registers from the join rendered for it
// exactly what kubeadm would have its kubelet register.
func TestRegistrationIsReadBackFromTheRenderedJoin(t *testing.T) {
	c := Cluster{Name: "demo", KubernetesVersion: "v1.34.2", ControlPlaneEndpoint: "10.0.0.1:6443"}
	hash := []string{"sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	for _, m := range []Machine{
		{Name: "demo-web-abcde", Labels: map[string]string{providers.LabelPool: "web", "tier": "web"},
			Taints: []v1alpha1.Taint{{Key: "dedicated", Value: "web", Effect: "NoSchedule"}, {Key: "gpu", Effect: "NoExecute"}}},
		{Name: "demo-plain-abcde"},
	} {
		t.Run(m.Name, func(t *testing.T) {
			b, err := Join(c, m, "abcdef.0123456789abcdef", hash)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ReadRegistration(b)
			if err != nil {
				t.Fatal(err)
			}
			want := m.Labels
			if want == nil {
				want = map[string]string{}
			}
			if r.Name != m.Name || !maps.Equal(r.Labels, want) || !slices.Equal(r.Taints, m.Taints) {
				t.Errorf("read %+v, want name %s, labels %v, taints %v", r, m.Name, want, m.Taints)
			}
		})
	}
	if _, err := ReadRegistration(providers.Bootstrap{Script: "true"}); err == nil {
		t.Error("a bootstrap with no kubeadm configuration reads as a registration")
	}
}
