package bootstrap

import (
	"strings"
	"testing"

	"github.com/seedhq/seed/providers"
)

func TestImagePullPolicyFollowsPullImages(t *testing.T) {
	hash := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		pull bool
		want string
	}{{false, "imagePullPolicy: Never"}, {true, "imagePullPolicy: IfNotPresent"}} {
		c := Cluster{Name: "c1", KubernetesVersion: "v1.34.2", ControlPlaneEndpoint: "c1-control-plane:6443", PullImages: tc.pull}
		b, err := Join(c, Machine{Name: "c1-workers-abcde"}, "abcdef.0123456789abcdef", []string{hash})
		if err != nil {
			t.Fatal(err)
		}
		if got := configOf(b); !strings.Contains(got, tc.want) {
			t.Errorf("PullImages=%t: config lacks %q:\n%s", tc.pull, tc.want, got)
		}
	}
}

func configOf(b providers.Bootstrap) string {
	for _, f := range b.Files {
		if f.Path == KubeadmConfigPath {
			return string(f.Content)
		}
	}
	return ""
}
