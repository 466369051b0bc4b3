package aws

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/providers"
)

// The bootstraps pkg/bootstrap renders (the Docker provider's too) go
// through this provider's validation and user data, and come out as valid
// shell that never shows the token in plain text.
func TestRealBootstrapsBecomeUserData(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	infra := e.ensure(t)
	c := bootstrap.Cluster{Name: "demo", KubernetesVersion: "v1.34.2", ControlPlaneEndpoint: infra.ControlPlaneEndpoint, CertSANs: infra.CertSANs}
	cpBoot, err := bootstrap.ControlPlane(c, bootstrap.Machine{Name: "demo-control-plane", KubernetesVersion: "v1.34.2"})
	if err != nil {
		t.Fatal(err)
	}
	const token = "abcdef.0123456789abcdef"
	wBoot, err := bootstrap.Join(c, bootstrap.Machine{Name: "demo-workers-abcde", KubernetesVersion: "v1.34.2"}, token, []string{"sha256:" + strings.Repeat("a", 64)})
	if err != nil {
		t.Fatal(err)
	}
	cp := controlPlane("demo-control-plane")
	cp.Bootstrap = cpBoot
	w := worker("demo-workers-abcde")
	w.Bootstrap = wBoot
	if _, err := e.p.CreateMachines(ctx, []providers.MachineSpec{cp, w}); err != nil {
		t.Fatal(err)
	}
	bash, _ := exec.LookPath("bash")
	for _, name := range []string{cp.Name, w.Name} {
		in := instanceByName(t, e.ec2, name)
		script := decodeUserData(t, e.ec2.UserData(aws.ToString(in.InstanceId)))
		if strings.Contains(script, token) {
			t.Errorf("%s: the token is in plain text in user data", name)
		}
		if bash != "" {
			cmd := exec.Command(bash, "-n")
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: bash -n: %v\n%s", name, err, out)
			}
		}
		t.Logf("%s: %d bytes of user data, gzipped", name, len(e.ec2.UserData(aws.ToString(in.InstanceId)))*3/4)
	}
	if strings.Contains(e.logs.String(), token) {
		t.Error("the token is in the logs")
	}
}
