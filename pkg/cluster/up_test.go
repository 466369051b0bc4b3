package cluster

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/fake"
)

// stager is a provider that ships images the way AWS does, and remembers
// what it was asked to create.
type stager struct {
	*fake.Provider
	staged  map[string]providers.StagedImage
	content map[string]string
	specs   []providers.MachineSpec
}

func newStager() *stager {
	return &stager{Provider: fake.New(nil), staged: map[string]providers.StagedImage{}, content: map[string]string{}}
}

func (s *stager) StageImage(_ context.Context, img providers.StagedImage) error {
	b, err := io.ReadAll(img.Data)
	if err != nil {
		return err
	}
	if int64(len(b)) != img.Size {
		return errors.New("size does not match the data")
	}
	s.staged[img.Name], s.content[img.Name] = img, string(b)
	return nil
}

func (s *stager) CreateMachine(ctx context.Context, spec providers.MachineSpec) (providers.Machine, error) {
	s.specs = append(s.specs, spec)
	return s.Provider.CreateMachine(ctx, spec)
}

// recorder is a provider without ImageStager (Docker's case).
type recorder struct {
	*fake.Provider
	specs []providers.MachineSpec
}

func (r *recorder) CreateMachine(ctx context.Context, spec providers.MachineSpec) (providers.Machine, error) {
	r.specs = append(r.specs, spec)
	return r.Provider.CreateMachine(ctx, spec)
}

func awsSpec(t *testing.T, agentImage string) *v1alpha1.Cluster {
	t.Helper()
	doc := `apiVersion: ` + v1alpha1.APIVersion + `
kind: Cluster
metadata: {name: demo}
spec:
  kubernetesVersion: ` + v1alpha1.DefaultKubernetesVersion + `
  provider:
    aws: {region: eu-west-1, agentImage: "` + agentImage + `"}
  controlPlane: {machineType: t3.medium}
  nodePools: []
`
	c, err := v1alpha1.Load([]byte(doc), v1alpha1.ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func localImages(_ context.Context, ref string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("tarball of " + ref)), nil
}

func TestUpChecksImagesBeforeCreatingAnything(t *testing.T) {
	for _, c := range []struct {
		name    string
		network string
		source  func(context.Context, string) (io.ReadCloser, error)
		want    string
	}{
		{"no network image", "", localImages, "the pod network image is not set: build it with `make images` and pass --network-image $(cat bin/network-image)"},
		{"bad network image", "Not An Image", localImages, "is not an image reference"},
		{"no image source", "seed.local/seednet:abc", nil, "no image source"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newStager()
			_, err := Up(context.Background(), UpOptions{
				Spec: awsSpec(t, ""), Provider: p, AgentImage: "seed.local/agent:abc", NetworkImage: c.network, ImageSource: c.source,
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Up = %v, want an error saying %q", err, c.want)
			}
			if n := p.TotalCalls(); n != 0 {
				t.Errorf("%d provider calls before the error, want none", n)
			}
		})
	}
}

func TestCreateControlPlaneShipsImages(t *testing.T) {
	const network = "seed.local/seednet:abc"
	infra := providers.Infrastructure{ControlPlaneEndpoint: "10.0.0.10:6443", ExternalEndpoint: "203.0.113.1:6443"}
	for _, c := range []struct {
		name        string
		agentImage  string // spec.provider.aws.agentImage
		wantStaged  map[string]bool
		wantAgentIn string // the agent image the manifests name
	}{
		{"local agent image", "", map[string]bool{"agent": false, "network": true}, "seed.local/agent:abc"},
		{"registry agent image", "registry.example/seed-agent:v1", map[string]bool{"network": true}, "registry.example/seed-agent:v1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newStager()
			o := defaulted(UpOptions{Spec: awsSpec(t, c.agentImage), SpecYAML: []byte("spec"), Provider: p,
				AgentImage: "seed.local/agent:abc", NetworkImage: network, ImageSource: localImages})
			if _, err := createControlPlane(context.Background(), o, infra, "demo-control-plane"); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for name, img := range p.staged {
				got[name] = img.Workers
			}
			if len(got) != len(c.wantStaged) {
				t.Errorf("staged %v, want %v", got, c.wantStaged)
			}
			for name, workers := range c.wantStaged {
				if w, ok := got[name]; !ok || w != workers {
					t.Errorf("image %s staged %v (workers %v), want workers %v", name, ok, w, workers)
				}
			}
			if p.content["network"] != "tarball of "+network {
				t.Errorf("network image content %q", p.content["network"])
			}
			if len(p.specs) != 1 {
				t.Fatalf("%d machines created", len(p.specs))
			}
			files := map[string]providers.File{}
			for _, f := range p.specs[0].Bootstrap.Files {
				files[f.Path] = f
			}
			seednet, ok := files[bootstrap.ManifestsDir+"/10-seednet.yaml"]
			if !ok || seednet.Mode != 0o600 || !strings.Contains(string(seednet.Content), network) || !strings.Contains(string(seednet.Content), "vxlan") {
				t.Errorf("seednet manifest %v: mode %o, %d bytes", ok, seednet.Mode, len(seednet.Content))
			}
			if _, ok := files[agentImagePath]; ok {
				t.Error("the agent image went into the bootstrap as well as the bucket")
			}
			if agent := files[bootstrap.ManifestsDir+"/50-seed-agent.yaml"]; !strings.Contains(string(agent.Content), c.wantAgentIn) {
				t.Errorf("the agent's manifests do not name %s", c.wantAgentIn)
			}
		})
	}
}

// The Docker path is unchanged: the agent image travels in the bootstrap,
// and the node image carries seednet and its manifest.
func TestCreateControlPlaneWithoutStager(t *testing.T) {
	c, raw, err := LoadSpec("", "demo")
	if err != nil {
		t.Fatal(err)
	}
	p := &recorder{Provider: fake.New(nil)}
	o := UpOptions{Spec: c, SpecYAML: raw, Provider: p, AgentImage: "seed.local/agent:abc", ImageSource: localImages}
	if err := checkImages(o); err != nil {
		t.Fatalf("checkImages = %v; a provider that does not stage needs no network image", err)
	}
	if _, err := createControlPlane(context.Background(), o, providers.Infrastructure{ControlPlaneEndpoint: "seed-control-plane:6443", ExternalEndpoint: "127.0.0.1:6443"}, "demo-control-plane"); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range p.specs[0].Bootstrap.Files {
		paths = append(paths, f.Path)
		if f.Path == agentImagePath && string(f.Content) != "tarball of seed.local/agent:abc" {
			t.Errorf("agent image file holds %q", f.Content)
		}
	}
	joined := strings.Join(paths, " ")
	if !strings.Contains(joined, agentImagePath) || strings.Contains(joined, "seednet") {
		t.Errorf("bootstrap files %v: want the agent image and no seednet manifest", paths)
	}
}
