package docker

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/seedhq/seed/providers"
)

func TestNormalizeImageRef(t *testing.T) {
	for in, want := range map[string]string{
		"seed-agent:abc":                          "docker.io/library/seed-agent:abc",
		"seed-agent":                              "docker.io/library/seed-agent:latest",
		"someone/app:v1":                          "docker.io/someone/app:v1",
		"registry.k8s.io/kube-proxy:v1.33.4":      "registry.k8s.io/kube-proxy:v1.33.4",
		"registry.k8s.io/coredns/coredns:v1.12.1": "registry.k8s.io/coredns/coredns:v1.12.1",
		"seed.local/seednet:c15b8fa1b668":         "seed.local/seednet:c15b8fa1b668",
		"localhost/x":                             "localhost/x:latest",
		"localhost:5000/x":                        "localhost:5000/x:latest",
		"app@sha256:0123":                         "docker.io/library/app@sha256:0123",
	} {
		if got := normalizeImageRef(in); got != want {
			t.Errorf("normalizeImageRef(%q) = %q, want %q", in, got, want)
		}
	}
}

// shipped returns the files under the images folder copied into a
// container, by path.
func shipped(t *testing.T, c fakeContainer) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range c.archives {
		tr := tar.NewReader(bytes.NewReader(a))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if strings.HasPrefix("/"+h.Name, "/var/lib/seed/images/") {
				body, _ := io.ReadAll(tr)
				out["/"+h.Name] = string(body)
			}
		}
	}
	return out
}

func TestCreateMachineShipsTheImagesItsNodeImageLacks(t *testing.T) {
	f := newFakeEngine()
	f.labelImage(testImage, map[string]string{LabelPreloadedImages: "registry.k8s.io/kube-proxy:v1.34.2 registry.k8s.io/coredns/coredns:v1.12.1 seed.local/seednet:new"})
	for _, img := range []string{"registry.k8s.io/kube-proxy:v1.33.4", "registry.k8s.io/coredns/coredns:v1.12.1", "seed-agent:abc", "seed.local/seednet:new"} {
		f.labelImage(img, nil)
	}
	p, _ := newTestProvider(t, f, Options{})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	spec := workerSpec("demo-control-plane-2")
	spec.Role = providers.RoleControlPlane
	spec.Images = []string{"registry.k8s.io/kube-proxy:v1.33.4", "registry.k8s.io/coredns/coredns:v1.12.1", "seed-agent:abc", "seed-agent:abc", "seed.local/seednet:new"}
	if _, err := p.CreateMachine(ctx(t), spec); err != nil {
		t.Fatal(err)
	}
	c, _ := f.byName(spec.Name)
	got := shipped(t, c)
	var paths []string
	for path := range got {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	want := []string{"/var/lib/seed/images/docker.io-library-seed-agent-abc.tar", "/var/lib/seed/images/registry.k8s.io-kube-proxy-v1.33.4.tar"}
	if !slices.Equal(paths, want) {
		t.Fatalf("shipped %v, want %v (the preloaded ones left out, each once)", paths, want)
	}
	if !strings.HasPrefix(got[want[0]], "image seed-agent:abc\n") {
		t.Errorf("the agent tarball holds %.40q", got[want[0]])
	}
	if c.State != stateRunning {
		t.Errorf("machine is %s", c.State)
	}

	// Asked again, nothing is shipped twice.
	saves := f.Calls("ImageSave")
	if _, err := p.CreateMachine(ctx(t), spec); err != nil || f.Calls("ImageSave") != saves {
		t.Fatalf("second CreateMachine: %v, %d more exports", err, f.Calls("ImageSave")-saves)
	}
}

func TestCreateMachineRefusesAnImageTheHostLacks(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	spec := workerSpec("demo-workers-a")
	spec.Images = []string{"registry.k8s.io/kube-proxy:v1.33.4"}
	_, err := p.CreateMachine(ctx(t), spec)
	mustKind(t, err, providers.KindInvalid, "registry.k8s.io/kube-proxy:v1.33.4")
	mustKind(t, err, providers.KindInvalid, "hack/build-images.sh VERSION")
	if n, _, _ := f.counts(); n != 0 {
		t.Errorf("%d containers made for a machine that cannot run", n)
	}
}

func TestCreateMachineShipsEverythingWhenTheNodeImageListsNothing(t *testing.T) {
	f := newFakeEngine(testImage, "seed-agent:abc")
	p, _ := newTestProvider(t, f, Options{})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	spec := workerSpec("demo-workers-a")
	spec.Images = []string{"seed-agent:abc"}
	if _, err := p.CreateMachine(ctx(t), spec); err != nil {
		t.Fatal(err)
	}
	c, _ := f.byName(spec.Name)
	if got := shipped(t, c); len(got) != 1 {
		t.Fatalf("shipped %v", got)
	}
}
