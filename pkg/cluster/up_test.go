package cluster

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/fake"
)

// recorder is the fake provider, remembering the machines it was asked to
// create with their bootstraps.
type recorder struct {
	*fake.Provider
	specs []providers.MachineSpec
}

func (r *recorder) CreateMachine(ctx context.Context, spec providers.MachineSpec) (providers.Machine, error) {
	r.specs = append(r.specs, spec)
	return r.Provider.CreateMachine(ctx, spec)
}

// What the two kinds of machines declare: stock machines that pull
// Kubernetes' images and have Seed's staged (AWS), and machines whose node
// image holds them all (Docker).
var (
	pulledImages    = providers.Capabilities{StagesImages: true}
	preloadedImages = providers.Capabilities{PreloadedImages: true, ReadsFiles: true,
		Agent: providers.AgentRequirements{HostDockerSocket: true}}
)

func newRecorder(caps providers.Capabilities) *recorder {
	f := fake.New(nil)
	f.SetCapabilities(caps)
	return &recorder{Provider: f}
}

func awsSpec(t *testing.T) *v1alpha1.Cluster {
	t.Helper()
	doc := `apiVersion: ` + v1alpha1.APIVersion + `
kind: Cluster
metadata: {name: demo}
spec:
  kubernetesVersion: ` + v1alpha1.DefaultKubernetesVersion + `
  provider:
    aws: {region: eu-west-1}
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
			p := newRecorder(pulledImages)
			_, err := Up(context.Background(), UpOptions{
				Spec: awsSpec(t), Provider: p, AgentImage: "seed.local/agent:abc", NetworkImage: c.network, ImageSource: c.source,
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

func TestCreateControlPlaneShipsOrPullsTheAgentImage(t *testing.T) {
	const (
		network = "seed.local/seednet:abc"
		local   = "seed.local/agent:abc"
	)
	withImage := func(ref string) providers.Capabilities {
		c := pulledImages
		c.Agent.Image = ref
		return c
	}
	infra := providers.Infrastructure{ControlPlaneEndpoint: "10.0.0.10:6443", ExternalEndpoint: "203.0.113.1:6443"}
	for _, c := range []struct {
		name string
		caps providers.Capabilities
		// wantStaged maps each staged image to whether workers get it.
		wantStaged    map[string]bool
		wantInBoot    bool // the agent tarball travels in the bootstrap
		wantSeednet   bool // the control plane applies the pod network
		wantImage     string
		wantPolicy    string
		wantSocket    bool
		wantPullsKube bool // kubeadm pulls Kubernetes' images
	}{
		{name: "stock machines, the seed's own agent image: staged, never pulled", caps: pulledImages,
			wantStaged: map[string]bool{"agent": false, "network": true}, wantSeednet: true,
			wantImage: local, wantPolicy: "Never", wantPullsKube: true},
		{name: "a registry agent image with a fixed tag: pulled once, not staged", caps: withImage("registry.example/seed-agent:v1"),
			wantStaged: map[string]bool{"network": true}, wantSeednet: true,
			wantImage: "registry.example/seed-agent:v1", wantPolicy: "IfNotPresent", wantPullsKube: true},
		{name: "a registry agent image tagged latest: always pulled", caps: withImage("registry.example:5000/seed-agent:latest"),
			wantStaged: map[string]bool{"network": true}, wantSeednet: true,
			wantImage: "registry.example:5000/seed-agent:latest", wantPolicy: "Always", wantPullsKube: true},
		{name: "a registry agent image without a tag: always pulled", caps: withImage("registry.example:5000/seed-agent"),
			wantStaged: map[string]bool{"network": true}, wantSeednet: true,
			wantImage: "registry.example:5000/seed-agent", wantPolicy: "Always", wantPullsKube: true},
		{name: "a registry agent image by digest: pulled once", caps: withImage("registry.example/seed-agent@sha256:" + strings.Repeat("a", 64)),
			wantStaged: map[string]bool{"network": true}, wantSeednet: true,
			wantImage: "registry.example/seed-agent@sha256:" + strings.Repeat("a", 64), wantPolicy: "IfNotPresent", wantPullsKube: true},
		{name: "preloaded machines: the agent image in the bootstrap, nothing staged", caps: preloadedImages,
			wantStaged: map[string]bool{}, wantInBoot: true,
			wantImage: local, wantPolicy: "Never", wantSocket: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newRecorder(c.caps)
			o := defaulted(UpOptions{Spec: awsSpec(t), SpecYAML: []byte("spec"), Provider: p,
				AgentImage: local, NetworkImage: network, ImageSource: localImages})
			if err := checkImages(o); err != nil {
				t.Fatalf("checkImages = %v", err)
			}
			if _, err := createControlPlane(context.Background(), o, infra, "demo-control-plane"); err != nil {
				t.Fatal(err)
			}
			staged := p.Staged()
			got := map[string]bool{}
			for name, img := range staged {
				got[name] = img.Workers
			}
			if !reflect.DeepEqual(got, c.wantStaged) {
				t.Errorf("staged %v (name: workers), want %v", got, c.wantStaged)
			}
			if img, ok := staged["agent"]; ok && string(img.Data) != "tarball of "+local {
				t.Errorf("agent image staged as %q", img.Data)
			}
			if img, ok := staged["network"]; ok && string(img.Data) != "tarball of "+network {
				t.Errorf("network image staged as %q", img.Data)
			}
			if len(p.specs) != 1 {
				t.Fatalf("%d machines created, want the control plane", len(p.specs))
			}
			files := map[string]providers.File{}
			for _, f := range p.specs[0].Bootstrap.Files {
				files[f.Path] = f
			}
			if f, ok := files[agentImagePath]; ok != c.wantInBoot || (ok && string(f.Content) != "tarball of "+local) {
				t.Errorf("agent tarball in the bootstrap: %t (%d bytes), want %t", ok, len(f.Content), c.wantInBoot)
			}
			seednet, ok := files[networkManifestPath]
			if ok != c.wantSeednet {
				t.Errorf("seednet manifest in the bootstrap: %t, want %t", ok, c.wantSeednet)
			}
			if ok && (seednet.Mode != 0o600 || !strings.Contains(string(seednet.Content), network) || !strings.Contains(string(seednet.Content), "vxlan")) {
				t.Errorf("seednet manifest: mode %o, %d bytes", seednet.Mode, len(seednet.Content))
			}
			if pulls := strings.Contains(bootstrapText(p.specs[0].Bootstrap), "imagePullPolicy: IfNotPresent"); pulls != c.wantPullsKube {
				t.Errorf("kubeadm pulls Kubernetes' images: %t, want %t", pulls, c.wantPullsKube)
			}

			// The manifests the control plane applies at boot, and the ones
			// the seed installs when it runs again, run the same agent.
			boot, err := decodeYAML(files[bootstrap.ManifestsDir+"/50-seed-agent.yaml"].Content)
			if err != nil {
				t.Fatal(err)
			}
			installed, err := agentManifests(o)
			if err != nil {
				t.Fatal(err)
			}
			for what, objs := range map[string][]*unstructured.Unstructured{"applied at boot": boot, "installed by the seed": installed} {
				image, policy, socket := agentContainer(t, objs)
				if image != c.wantImage || policy != c.wantPolicy || socket != c.wantSocket {
					t.Errorf("agent %s: image %s, pull policy %s, docker socket %t; want %s, %s, %t",
						what, image, policy, socket, c.wantImage, c.wantPolicy, c.wantSocket)
				}
			}
		})
	}
}

// Machines with preloaded images need nothing shipped but the agent; a
// provider that neither preloads nor stages images leaves the pod network
// no way onto its machines, which Up says before creating anything.
func TestCheckImagesFollowsTheProvider(t *testing.T) {
	for _, c := range []struct {
		name    string
		caps    providers.Capabilities
		network string
		source  func(context.Context, string) (io.ReadCloser, error)
		want    string // "" for no error
	}{
		{"preloaded: no network image, no image source", preloadedImages, "", nil, ""},
		{"staged: all there", pulledImages, "seed.local/seednet:abc", localImages, ""},
		{"neither preloaded nor staged", providers.Capabilities{}, "seed.local/seednet:abc", localImages, "neither preloads images"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkImages(UpOptions{Spec: awsSpec(t), Provider: newRecorder(c.caps), NetworkImage: c.network, ImageSource: c.source})
			if c.want == "" && err != nil {
				t.Fatalf("checkImages = %v, want nil", err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("checkImages = %v, want an error saying %q", err, c.want)
			}
		})
	}
}

func TestRegistryPullPolicy(t *testing.T) {
	for ref, want := range map[string]string{
		"registry.example/seed-agent:v1":            "IfNotPresent",
		"registry.example:5000/seed-agent:v1.2":     "IfNotPresent",
		"registry.example:5000/seed-agent":          "Always",
		"registry.example/seed-agent:latest":        "Always",
		"seed-agent":                                "Always",
		"registry.example/seed-agent@sha256:abc123": "IfNotPresent",
		"registry.example/seed-agent:v1@sha256:abc": "IfNotPresent",
	} {
		if got := registryPullPolicy(ref); got != want {
			t.Errorf("registryPullPolicy(%q) = %s, want %s", ref, got, want)
		}
	}
}

func bootstrapText(b providers.Bootstrap) string {
	var sb strings.Builder
	sb.WriteString(b.Script)
	for _, f := range b.Files {
		if f.Path != agentImagePath {
			sb.Write(f.Content)
		}
	}
	return sb.String()
}

func decodeYAML(doc []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, part := range strings.Split(string(doc), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(part), &obj); err != nil {
			return nil, err
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out, nil
}

// agentContainer returns the agent Deployment's image, pull policy, and
// whether it mounts the host's Docker socket.
func agentContainer(t *testing.T, objs []*unstructured.Unstructured) (image, policy string, socket bool) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if len(containers) != 1 {
			t.Fatalf("the agent Deployment has %d containers", len(containers))
		}
		c := containers[0].(map[string]any)
		volumes, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "volumes")
		for _, v := range volumes {
			if hp, ok := v.(map[string]any)["hostPath"].(map[string]any); ok && hp["path"] == "/var/run/docker.sock" {
				socket = true
			}
		}
		image, _ = c["image"].(string)
		policy, _ = c["imagePullPolicy"].(string)
		return image, policy, socket
	}
	t.Fatal("no agent Deployment")
	return "", "", false
}
