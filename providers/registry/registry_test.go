package registry

import (
	"context"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// The registry is where the spec's provider section becomes provider
// options; what the rest of Seed needs to know from it comes back as the
// provider's declared capabilities.
func TestNewTranslatesTheSpecIntoCapabilities(t *testing.T) {
	for _, c := range []struct {
		name     string
		provider string
		want     providers.Capabilities
	}{
		{"docker", "docker: {}", providers.Capabilities{PreloadedImages: true, ShipsImages: true, ReadsFiles: true, KeepsBackupStore: true,
			Agent: providers.AgentRequirements{HostDockerSocket: true}}},
		{"aws, the seed's own agent image", "aws: {region: eu-west-1}", providers.Capabilities{StagesImages: true, KeepsBackupStore: true}},
		{"aws, a registry agent image and credentials", "aws: {region: eu-west-1, agentImage: registry.example/seed-agent:v1, credentialsSecret: aws-creds}",
			providers.Capabilities{StagesImages: true, KeepsBackupStore: true, Agent: providers.AgentRequirements{Image: "registry.example/seed-agent:v1", CredentialsSecret: "aws-creds"}}},
		{"simulated", "simulated: {registrationDelay: 5s}", providers.Capabilities{PreloadedImages: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// No AWS call is made: credentials resolve on the first one.
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
			spec, err := v1alpha1.Load([]byte(`apiVersion: `+v1alpha1.APIVersion+`
kind: Cluster
metadata: {name: demo}
spec:
  kubernetesVersion: `+v1alpha1.DefaultKubernetesVersion+`
  provider:
    `+c.provider+`
`), v1alpha1.ValidateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := New(context.Background(), spec, Env{Kube: &rest.Config{Host: "https://127.0.0.1:6443"}})
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != Name(spec) {
				t.Errorf("built provider %s for a spec selecting %s", p.Name(), Name(spec))
			}
			if got := p.Capabilities(); got != c.want {
				t.Errorf("Capabilities = %+v, want %+v", got, c.want)
			}
		})
	}
}

// The simulated provider's machines are Nodes of a cluster that exists:
// without an API server to make them in (seed up), it is refused, saying
// where it can run.
func TestTheSimulatedProviderNeedsAnAPIServer(t *testing.T) {
	spec, err := v1alpha1.Load([]byte(`apiVersion: `+v1alpha1.APIVersion+`
kind: Cluster
metadata: {name: demo}
spec:
  provider: {simulated: {}}
`), v1alpha1.ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), spec, Env{})
	if !providers.IsInvalid(err) || !strings.Contains(err.Error(), "seed up cannot create a simulated cluster") {
		t.Errorf("New without an API server: %v, want an Invalid error saying seed up cannot use it", err)
	}
}
