package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/providers"
)

const testImage = "seed-node:v1.34.2"

func newTestProvider(t *testing.T, f *fakeEngine, opts Options) (*provider, *atomic.Int32) {
	t.Helper()
	if opts.ClusterName == "" {
		opts.ClusterName = "demo"
	}
	p, err := newProvider(opts, f)
	if err != nil {
		t.Fatalf("newProvider: %v", err)
	}
	var picks atomic.Int32
	p.pickFreePort = func() (int32, error) { return 40000 + picks.Add(1), nil }
	return p, &picks
}

func workerSpec(name string) providers.MachineSpec {
	return providers.MachineSpec{
		Name: name, Pool: "workers", Role: providers.RoleWorker, MachineType: "",
		KubernetesVersion: "v1.34.2",
		Bootstrap: providers.Bootstrap{
			Files:  []providers.File{{Path: "/etc/seed/join.yaml", Mode: 0o600, Content: []byte("token: x")}},
			Script: "#!/bin/sh\nkubeadm join --config /etc/seed/join.yaml\n",
		},
	}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustKind(t *testing.T, err error, kind providers.ErrorKind, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got nil", kind)
	}
	if got := providers.KindOf(err); got != kind {
		t.Fatalf("want a %s error, got %q: %v", kind, got, err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not say %q", err, contains)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"plain", Options{ClusterName: "demo"}, true},
		{"unix URL", Options{ClusterName: "demo", Socket: "unix:///tmp/d.sock"}, true},
		{"empty name", Options{}, false},
		{"upper case", Options{ClusterName: "Demo"}, false},
		{"too long for the alias", Options{ClusterName: strings.Repeat("a", 50)}, false},
		{"tcp", Options{ClusterName: "demo", Socket: "tcp://127.0.0.1:2375"}, false},
		{"port", Options{ClusterName: "demo", APIServerPort: 70000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.opts)
			if tc.ok != (err == nil) {
				t.Fatalf("New(%+v) = %v, want ok=%v", tc.opts, err, tc.ok)
			}
			if err != nil && !providers.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			if err == nil && p.Name() != "docker" {
				t.Fatalf("Name() = %q", p.Name())
			}
		})
	}
}

func TestEnsureInfrastructure(t *testing.T) {
	f := newFakeEngine(testImage)
	p, picks := newTestProvider(t, f, Options{})

	infra, err := p.EnsureInfrastructure(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := providers.Infrastructure{
		ControlPlaneEndpoint: "demo-control-plane:6443",
		ExternalEndpoint:     "127.0.0.1:40001",
		CertSANs:             []string{"demo-control-plane", "localhost", "127.0.0.1"},
	}
	if !equalInfra(infra, want) {
		t.Fatalf("got %+v, want %+v", infra, want)
	}
	nws, _ := f.NetworkList(ctx(t), nil)
	if len(nws) != 1 || nws[0].Name != "seed-demo" || nws[0].Labels[providers.LabelCluster] != "demo" ||
		nws[0].Labels[LabelAPIServerPort] != "40001" || nws[0].Labels[LabelHostSocket] != DefaultSocket {
		t.Fatalf("networks = %+v", nws)
	}

	// Again, and from another process that would pick another port: the
	// recorded one stands.
	other, _ := newTestProvider(t, f, Options{APIServerPort: 7443})
	for _, q := range []*provider{p, other} {
		again, err := q.EnsureInfrastructure(ctx(t))
		if err != nil || !equalInfra(again, want) {
			t.Fatalf("second EnsureInfrastructure = %+v, %v", again, err)
		}
	}
	if picks.Load() != 1 || f.Calls("NetworkCreate") != 1 {
		t.Fatalf("picked %d ports, created %d networks; want 1 and 1", picks.Load(), f.Calls("NetworkCreate"))
	}
}

func equalInfra(a, b providers.Infrastructure) bool {
	return a.ControlPlaneEndpoint == b.ControlPlaneEndpoint && a.ExternalEndpoint == b.ExternalEndpoint &&
		strings.Join(a.CertSANs, ",") == strings.Join(b.CertSANs, ",")
}

func TestEnsureInfrastructureGivenPort(t *testing.T) {
	f := newFakeEngine()
	p, picks := newTestProvider(t, f, Options{APIServerPort: 7443, HostSocket: "/run/user/1000/docker.sock"})
	infra, err := p.EnsureInfrastructure(ctx(t))
	if err != nil || infra.ExternalEndpoint != "127.0.0.1:7443" || picks.Load() != 0 {
		t.Fatalf("got %+v, %v after %d picks", infra, err, picks.Load())
	}
	nws, _ := f.NetworkList(ctx(t), nil)
	if nws[0].Labels[LabelHostSocket] != "/run/user/1000/docker.sock" {
		t.Fatalf("host socket label = %q", nws[0].Labels[LabelHostSocket])
	}
}

func TestEnsureInfrastructureRefusesForeignNetwork(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		says   string
	}{
		{"unlabelled", nil, "is not labelled seed.dev/cluster=demo"},
		{"no port", map[string]string{providers.LabelCluster: "demo"}, "is not a port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeEngine()
			f.addNetwork("seed-demo", tc.labels)
			// A network whose name merely contains ours is not ours.
			f.addNetwork("seed-demo2", map[string]string{providers.LabelCluster: "demo2", LabelAPIServerPort: "1"})
			p, _ := newTestProvider(t, f, Options{})
			_, err := p.EnsureInfrastructure(ctx(t))
			mustKind(t, err, providers.KindInvalid, tc.says)
		})
	}
}

// The engine's name check is best effort: two creators can both create.
// Every caller must then settle on the same network.
func TestEnsureInfrastructureRacingCreators(t *testing.T) {
	t.Run("interleaved", func(t *testing.T) {
		f := newFakeEngine()
		f.duplicateNetworks = true
		var once sync.Once
		f.Before("NetworkCreate", func() {
			once.Do(func() {
				f.addNetwork("seed-demo", map[string]string{providers.LabelCluster: "demo", LabelAPIServerPort: "39999"})
			})
		})
		p, _ := newTestProvider(t, f, Options{})
		infra, err := p.EnsureInfrastructure(ctx(t))
		if err != nil || infra.ExternalEndpoint != "127.0.0.1:39999" {
			t.Fatalf("got %+v, %v; want the first network's port", infra, err)
		}
		if _, n, _ := f.counts(); n != 1 {
			t.Fatalf("%d networks left, want 1", n)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		f := newFakeEngine()
		f.duplicateNetworks = true
		// Hold every creator until all have seen no network: each creates
		// one, the worst case.
		var arrived sync.WaitGroup
		arrived.Add(8)
		f.Before("NetworkCreate", func() { arrived.Done(); arrived.Wait() })
		var wg sync.WaitGroup
		endpoints := make([]string, 8)
		errs := make([]error, 8)
		for i := range endpoints {
			p, _ := newTestProvider(t, f, Options{APIServerPort: int32(41000 + i)})
			wg.Go(func() {
				infra, err := p.EnsureInfrastructure(ctx(t))
				endpoints[i], errs[i] = infra.ExternalEndpoint, err
			})
		}
		wg.Wait()
		if f.Calls("NetworkCreate") != 8 {
			t.Fatalf("%d creates, want 8", f.Calls("NetworkCreate"))
		}
		for i := range endpoints {
			if errs[i] != nil || endpoints[i] != endpoints[0] {
				t.Fatalf("caller %d: %q, %v; caller 0: %q", i, endpoints[i], errs[i], endpoints[0])
			}
		}
		if _, n, _ := f.counts(); n != 1 {
			t.Fatalf("%d networks left, want 1", n)
		}
	})
}

type tarEntry struct {
	mode    int64
	content string
}

func untar(t *testing.T, raw []byte) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[hdr.Name] = tarEntry{mode: hdr.Mode, content: string(b)}
	}
}

func TestCreateMachine(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{NodeImage: testImage})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}

	spec := workerSpec("demo-workers-abcde")
	m, err := p.CreateMachine(ctx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	want := providers.Machine{
		Name: spec.Name, Pool: "workers", Role: providers.RoleWorker, MachineType: "",
		KubernetesVersion: "v1.34.2", ProviderID: "seed://docker/demo/demo-workers-abcde",
		Phase: providers.PhaseRunning, InternalIP: "172.30.0.3",
	}
	c, _ := f.byName(spec.Name)
	want.CreatedAt = c.Created
	if m != want {
		t.Fatalf("got  %+v\nwant %+v", m, want)
	}
	for k, v := range map[string]string{
		providers.LabelCluster: "demo", providers.LabelPool: "workers", providers.LabelRole: "worker",
		providers.LabelMachine: spec.Name, providers.LabelVersion: "v1.34.2", providers.LabelType: "",
	} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if c.req.Hostname != spec.Name || c.req.HostConfig.NetworkMode != "seed-demo" || c.req.HostConfig.PortBindings != nil {
		t.Errorf("request = %+v", c.req)
	}
	if len(c.archives) != 1 {
		t.Fatalf("bootstrap copied %d times, want 1", len(c.archives))
	}
	files := untar(t, c.archives[0])
	for path, e := range map[string]tarEntry{
		"etc/seed/join.yaml":            {0o600, "token: x"},
		"var/lib/seed/bootstrap/script": {0o700, spec.Bootstrap.Script},
		"var/lib/seed/provider-id":      {0o644, "seed://docker/demo/demo-workers-abcde"},
	} {
		if files[path] != e {
			t.Errorf("archive %s = %+v, want %+v", path, files[path], e)
		}
	}

	// Asking again returns the same machine and changes nothing.
	again, err := p.CreateMachine(ctx(t), spec)
	if err != nil || again != want {
		t.Fatalf("second CreateMachine = %+v, %v", again, err)
	}
	if f.Calls("ContainerCreate") != 1 || f.Calls("CopyToContainer") != 1 || f.Calls("ContainerStart") != 1 {
		t.Fatalf("create/copy/start called %d/%d/%d times, want once each",
			f.Calls("ContainerCreate"), f.Calls("CopyToContainer"), f.Calls("ContainerStart"))
	}
}

func TestCreateControlPlane(t *testing.T) {
	for _, privileged := range []bool{false, true} {
		f := newFakeEngine("seed-node:v1.34.2")
		p, _ := newTestProvider(t, f, Options{Privileged: privileged, HostSocket: "/srv/docker.sock"})
		if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
			t.Fatal(err)
		}
		spec := workerSpec("demo-control-plane-1")
		spec.Role = providers.RoleControlPlane
		if _, err := p.CreateMachine(ctx(t), spec); err != nil {
			t.Fatal(err)
		}
		c, _ := f.byName(spec.Name)
		hc := c.req.HostConfig
		// The load balancer owns the endpoint: the control plane carries
		// only the name it finds the API servers by, and publishes nothing.
		if got := c.req.NetworkingConfig.EndpointsConfig["seed-demo"].Aliases; len(got) != 1 || got[0] != "demo-apiservers" {
			t.Errorf("aliases = %v", got)
		}
		if len(hc.PortBindings) != 0 || len(c.req.ExposedPorts) != 0 {
			t.Errorf("port bindings = %v, exposed %v; want none", hc.PortBindings, c.req.ExposedPorts)
		}
		if c.Labels[LabelEndpoint] != "load-balancer" {
			t.Errorf("labels = %v, want %s=load-balancer", c.Labels, LabelEndpoint)
		}
		if !contains(hc.Binds, "/srv/docker.sock:/var/run/docker.sock") {
			t.Errorf("binds = %v, want the host socket", hc.Binds)
		}
		if hc.Privileged != privileged || (len(hc.CapAdd) == 0) == !privileged {
			t.Errorf("privileged=%v: HostConfig = %+v", privileged, hc)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestNodeContainerFlags(t *testing.T) {
	req := nodeContainer(nodeParams{
		Name: "n1", Image: "img", Network: "seed-demo",
		Labels: map[string]string{providers.LabelCluster: "demo", providers.LabelMachine: "n1"},
	})
	hc := req.HostConfig
	checks := map[string]bool{
		"CapAdd ALL":              strings.Join(hc.CapAdd, ",") == "ALL",
		"CapDrop SYS_RESOURCE":    strings.Join(hc.CapDrop, ",") == "SYS_RESOURCE",
		"seccomp and apparmor":    strings.Join(hc.SecurityOpt, ",") == "seccomp=unconfined,apparmor=unconfined",
		"private cgroupns":        hc.CgroupnsMode == "private",
		"/proc/sys unmasked":      hc.MaskedPaths != nil && len(hc.MaskedPaths) == 0 && hc.ReadonlyPaths != nil && len(hc.ReadonlyPaths) == 0,
		"restart unless stopped":  hc.RestartPolicy != nil && hc.RestartPolicy.Name == "unless-stopped",
		"device rule":             strings.Join(hc.DeviceCgroupRules, ",") == "a *:* rwm",
		"tmpfs":                   len(hc.Tmpfs) == 2 && hc.Tmpfs["/run"] == "" && hc.Tmpfs["/tmp"] == "",
		"labelled anonymous /var": len(hc.Mounts) == 1 && hc.Mounts[0].Target == "/var" && hc.Mounts[0].Source == "" && hc.Mounts[0].VolumeOptions.Labels[providers.LabelCluster] == "demo",
		"stop signal":             req.StopSignal == "SIGRTMIN+3",
		"env":                     strings.Join(req.Env, ",") == "container=docker",
		"not privileged":          !hc.Privileged,
		"no socket for workers":   len(hc.Binds) == 0,
		"hostname":                req.Hostname == "n1",
		"network":                 hc.NetworkMode == "seed-demo" && len(req.NetworkingConfig.EndpointsConfig) == 1,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("%s: wrong in %+v", what, req)
		}
	}
}

// A crash between create and start leaves a created container: asking again
// must bootstrap and start it.
func TestCreateMachineResumesAfterCrash(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	spec := workerSpec("w1")
	f.FailNext("ContainerStart", engineError("starting container", http.StatusInternalServerError, "driver failed programming external connectivity"))
	_, err := p.CreateMachine(ctx(t), spec)
	mustKind(t, err, providers.KindTransient, "driver failed programming external connectivity")
	if c, _ := f.byName("w1"); c.State != stateCreated {
		t.Fatalf("state = %q, want created", c.State)
	}

	m, err := p.CreateMachine(ctx(t), spec)
	if err != nil || m.Phase != providers.PhaseRunning {
		t.Fatalf("resume = %+v, %v", m, err)
	}
	c, _ := f.byName("w1")
	if f.Calls("ContainerCreate") != 1 || len(c.archives) != 2 {
		t.Fatalf("created %d times, copied %d times; want 1 and 2", f.Calls("ContainerCreate"), len(c.archives))
	}
}

// Another process creates the container between our lookup and our create:
// the engine says conflict and theirs is the machine.
func TestCreateMachineLosesRace(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	spec := workerSpec("w1")
	var once sync.Once
	f.Before("ContainerCreate", func() {
		once.Do(func() { f.addContainer("w1", strings.Repeat("e", 64), stateCreated, p.labels(spec)) })
	})
	m, err := p.CreateMachine(ctx(t), spec)
	if err != nil || m.Phase != providers.PhaseRunning {
		t.Fatalf("got %+v, %v", m, err)
	}
	if c, _ := f.byName("w1"); c.ID != strings.Repeat("e", 64) || len(c.archives) != 1 {
		t.Fatalf("machine is %s with %d copies; want the other's, bootstrapped once", shortID(c.ID), len(c.archives))
	}
	if n, _, _ := f.counts(); n != 1 {
		t.Fatalf("%d containers, want 1", n)
	}
}

func TestCreateMachineConcurrent(t *testing.T) {
	f := newFakeEngine(testImage)
	a, _ := newTestProvider(t, f, Options{})
	b, _ := newTestProvider(t, f, Options{}) // another process
	if _, err := a.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	const callers = 16
	got := make([]providers.Machine, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		p := a
		if i%2 == 1 {
			p = b
		}
		wg.Go(func() { got[i], errs[i] = p.CreateMachine(ctx(t), workerSpec("w1")) })
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || got[i].Name != "w1" || got[i].CreatedAt != got[0].CreatedAt {
			t.Fatalf("caller %d: %+v, %v", i, got[i], errs[i])
		}
	}
	if n, _, _ := f.counts(); n != 1 || f.Calls("ContainerStart") < 1 {
		t.Fatalf("%d containers after concurrent creates, want 1", n)
	}
	if c, _ := f.byName("w1"); c.State != stateRunning {
		t.Fatalf("state = %q", c.State)
	}
}

func TestCreateMachineRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeEngine)
		spec  func(s *providers.MachineSpec)
		opts  Options
		kind  providers.ErrorKind
		says  string
	}{
		{
			name:  "container of that name is not ours",
			setup: func(f *fakeEngine) { f.addContainer("w1", strings.Repeat("d", 64), stateRunning, nil) },
			kind:  providers.KindInvalid, says: "container w1 (dddddddddddd) exists and is not a Seed machine",
		},
		{
			name: "container of that name is another cluster's",
			setup: func(f *fakeEngine) {
				f.addContainer("w1", strings.Repeat("d", 64), stateRunning, map[string]string{providers.LabelCluster: "prod"})
			},
			kind: providers.KindInvalid, says: `is a machine of cluster "prod", not "demo"`,
		},
		{
			name: "no image", opts: Options{NodeImage: "seed-node:missing"},
			kind: providers.KindInvalid, says: "No such image: seed-node:missing",
		},
		{
			name:  "no network",
			setup: func(f *fakeEngine) { f.Reset() },
			kind:  providers.KindInvalid, says: "EnsureInfrastructure must run first",
		},
		{
			name: "bad name", spec: func(s *providers.MachineSpec) { s.Name = "W_1" },
			kind: providers.KindInvalid, says: "machine name",
		},
		{
			name: "bad role", spec: func(s *providers.MachineSpec) { s.Role = "etcd" },
			kind: providers.KindInvalid, says: "machine role",
		},
		{
			name: "no image nor version", spec: func(s *providers.MachineSpec) { s.KubernetesVersion = "" },
			kind: providers.KindInvalid, says: "no node image",
		},
		{
			name: "relative file", spec: func(s *providers.MachineSpec) { s.Bootstrap.Files[0].Path = "etc/x" },
			kind: providers.KindInvalid, says: "must be absolute",
		},
		{
			name: "engine down",
			setup: func(f *fakeEngine) {
				f.FailNext("ContainerInspect", providers.NewError(providers.KindTransient, "inspecting container w1",
					&unreachableError{socket: DefaultSocket, hint: "is dockerd running?", err: errors.New("connection refused")}))
			},
			kind: providers.KindTransient, says: "cannot reach Docker at unix:///var/run/docker.sock: is dockerd running?",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeEngine(testImage)
			p, _ := newTestProvider(t, f, tc.opts)
			if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(f)
			}
			before, _, _ := f.counts()
			spec := workerSpec("w1")
			if tc.spec != nil {
				tc.spec(&spec)
			}
			_, err := p.CreateMachine(ctx(t), spec)
			mustKind(t, err, tc.kind, tc.says)
			if after, _, _ := f.counts(); after != before {
				t.Fatalf("containers went from %d to %d", before, after)
			}
		})
	}
}

// The engine resolves ID prefixes too: a machine named like the start of
// someone else's container ID must not be taken for it.
func TestNamesAreNotIDPrefixes(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	f.addContainer("unrelated", "abc"+strings.Repeat("0", 61), stateRunning, nil)

	if err := p.DeleteMachine(ctx(t), "abc"); err != nil {
		t.Fatalf("DeleteMachine(abc) = %v", err)
	}
	if _, ok := f.byName("unrelated"); !ok {
		t.Fatal("DeleteMachine removed a container whose ID starts with the machine's name")
	}
	if _, err := p.CreateMachine(ctx(t), workerSpec("abc")); err != nil {
		t.Fatalf("CreateMachine(abc) = %v", err)
	}
	if n, _, _ := f.counts(); n != 2 {
		t.Fatalf("%d containers, want 2", n)
	}
}

func TestDeleteMachine(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"w1", "w2"} {
		if _, err := p.CreateMachine(ctx(t), workerSpec(n)); err != nil {
			t.Fatal(err)
		}
	}
	f.addContainer("foreign", strings.Repeat("f", 64), stateRunning, nil)

	if err := p.DeleteMachine(ctx(t), "w1"); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteMachine(ctx(t), "w1"); err != nil {
		t.Fatalf("deleting a missing machine = %v, want success", err)
	}
	mustKind(t, p.DeleteMachine(ctx(t), "foreign"), providers.KindInvalid, "is not a Seed machine")
	if c, _, v := f.counts(); c != 2 || v != 1 {
		t.Fatalf("%d containers and %d volumes left, want w2 and foreign, and w2's volume", c, v)
	}

	// A removal already under way elsewhere is waited for: the machine is
	// deleted once it is gone, not before.
	w2, _ := f.byName("w2")
	f.FailNext("ContainerRemove", engineError("removing container", http.StatusConflict, "removal of container w2 is already in progress"))
	inspections := 0
	f.Before("ContainerInspect", func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		inspections++
		switch inspections {
		case 1:
			f.containers[w2.ID].State = stateRemoving
		case 3: // the other removal finishes
			delete(f.containers, w2.ID)
		}
	})
	if err := p.DeleteMachine(ctx(t), "w2"); err != nil {
		t.Fatalf("DeleteMachine during another removal = %v", err)
	}
	if _, ok := f.byName("w2"); ok || inspections < 3 {
		t.Errorf("DeleteMachine returned after %d inspections with w2 still there: %v; want it to wait until w2 is gone", inspections, ok)
	}
	// The other removal forgot the container before its volume, as the
	// engine does: the machine is gone only with its volume.
	if c, _, v := f.counts(); c != 1 || v != 0 {
		t.Errorf("%d containers and %d volumes left, want foreign and no volume", c, v)
	}

	// The same when the container is already gone at the first look.
	w3, err := p.CreateMachine(ctx(t), workerSpec("w3"))
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	id := ""
	for _, c := range f.containers {
		if c.Name == w3.Name {
			id = c.ID
		}
	}
	delete(f.containers, id)
	f.mu.Unlock()
	if err := p.DeleteMachine(ctx(t), "w3"); err != nil {
		t.Fatalf("DeleteMachine with only the volume left = %v", err)
	}
	if _, _, v := f.counts(); v != 0 {
		t.Errorf("%d volumes left after deleting w3, whose container was already gone", v)
	}
}

func TestListMachines(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{})
	for i, st := range []string{stateCreated, stateRunning, stateRestarting, statePaused, stateExited, stateRemoving, stateDead, "surprise"} {
		f.addContainer("m"+string(rune('a'+i)), strings.Repeat(string(rune('a'+i)), 64), st, map[string]string{
			providers.LabelCluster: "demo", providers.LabelRole: "worker", providers.LabelPool: "p",
		})
	}
	f.addContainer("other", strings.Repeat("9", 64), stateRunning, map[string]string{providers.LabelCluster: "prod"})

	ms, err := p.ListMachines(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Phase{
		providers.PhasePending, providers.PhaseRunning, providers.PhasePending, providers.PhaseStopped,
		providers.PhaseStopped, providers.PhaseDeleting, providers.PhaseFailed, providers.PhasePending,
	}
	if len(ms) != len(want) {
		t.Fatalf("listed %d machines, want %d: %+v", len(ms), len(want), ms)
	}
	for i, m := range ms {
		if m.Phase != want[i] || m.Name != "m"+string(rune('a'+i)) || m.Role != providers.RoleWorker ||
			m.ProviderID != "seed://docker/demo/"+m.Name || m.CreatedAt.IsZero() {
			t.Errorf("machine %d = %+v, want phase %s", i, m, want[i])
		}
	}
}

func TestDestroyInfrastructure(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{})
	prod, _ := newTestProvider(t, f, Options{ClusterName: "prod"})
	for _, q := range []*provider{p, prod} {
		if _, err := q.EnsureInfrastructure(ctx(t)); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{q.cluster + "-cp", q.cluster + "-w1"} {
			if _, err := q.CreateMachine(ctx(t), workerSpec(n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A stray volume, left by a create that failed half way.
	f.mu.Lock()
	f.volumes["stray"] = &volume{Name: "stray", Labels: map[string]string{providers.LabelCluster: "demo"}}
	f.mu.Unlock()

	// One container will not go: the rest must, and the error must say
	// what is left.
	f.FailNext("ContainerRemove", engineError("removing container", http.StatusInternalServerError, "device or resource busy"))
	err := p.DestroyInfrastructure(ctx(t))
	mustKind(t, err, providers.KindTransient, "device or resource busy")
	for _, says := range []string{"machine demo-", "network seed-demo", "has active endpoints", "volume"} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("error %q does not say %q", err, says)
		}
	}

	for range 2 {
		if err := p.DestroyInfrastructure(ctx(t)); err != nil {
			t.Fatalf("DestroyInfrastructure = %v", err)
		}
	}
	if ms, _ := p.ListMachines(ctx(t)); len(ms) != 0 {
		t.Fatalf("machines left: %+v", ms)
	}
	for _, list := range []func() (int, error){
		func() (int, error) {
			v, err := f.VolumeList(ctx(t), labelFilter(providers.LabelCluster, "demo"))
			return len(v), err
		},
		func() (int, error) {
			n, err := f.NetworkList(ctx(t), labelFilter(providers.LabelCluster, "demo"))
			return len(n), err
		},
	} {
		if n, err := list(); err != nil || n != 0 {
			t.Fatalf("%d left, %v", n, err)
		}
	}
	if ms, _ := prod.ListMachines(ctx(t)); len(ms) != 2 {
		t.Fatalf("another cluster's machines were touched: %+v", ms)
	}
}

func TestBootstrapArchive(t *testing.T) {
	now := time.Unix(0, 0)
	for _, tc := range []struct {
		name  string
		files []providers.File
		want  map[string]tarEntry
		err   string
	}{
		{
			name: "script and ID only",
			want: map[string]tarEntry{
				"var/lib/seed/bootstrap/script": {0o700, "echo hi"},
				"var/lib/seed/provider-id":      {0o644, "seed://docker/c/m"},
			},
		},
		{
			name:  "files keep their modes; zero means 0644",
			files: []providers.File{{Path: "/etc/k/a", Mode: 0o600, Content: []byte("a")}, {Path: "/b", Content: []byte("b")}},
			want: map[string]tarEntry{
				"etc/k/a":                       {0o600, "a"},
				"b":                             {0o644, "b"},
				"var/lib/seed/bootstrap/script": {0o700, "echo hi"},
				"var/lib/seed/provider-id":      {0o644, "seed://docker/c/m"},
			},
		},
		{name: "relative", files: []providers.File{{Path: "etc/a"}}, err: "absolute"},
		{name: "escapes", files: []providers.File{{Path: "/etc/../../a"}}, err: "clean"},
		{name: "twice", files: []providers.File{{Path: "/a"}, {Path: "/a"}}, err: "twice"},
		{name: "overwrites ours", files: []providers.File{{Path: providerIDPath}}, err: "would overwrite"},
		{name: "overwrites the allocatable", files: []providers.File{{Path: bootstrap.AllocatablePath}}, err: "would overwrite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := bootstrapArchive(providers.Bootstrap{Files: tc.files, Script: "echo hi"}, "seed://docker/c/m", nil, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := untar(t, raw)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %+v, want %+v", k, got[k], v)
				}
			}
		})
	}
}

func TestPhase(t *testing.T) {
	for state, want := range map[string]providers.Phase{
		"created": providers.PhasePending, "running": providers.PhaseRunning, "restarting": providers.PhasePending,
		"paused": providers.PhaseStopped, "exited": providers.PhaseStopped, "removing": providers.PhaseDeleting,
		"dead": providers.PhaseFailed, "": providers.PhasePending,
	} {
		if got := phase(state); got != want {
			t.Errorf("phase(%q) = %s, want %s", state, got, want)
		}
	}
}

// The engine reserves a name before the container shows up: a caller that
// lost the race waits for it, and gives up, retryably, if it never comes.
func TestCreateMachineAwaitsReservedName(t *testing.T) {
	for _, appears := range []bool{true, false} {
		t.Run(map[bool]string{true: "appears", false: "never appears"}[appears], func(t *testing.T) {
			f := newFakeEngine(testImage)
			p, _ := newTestProvider(t, f, Options{})
			p.awaitTimeout = 300 * time.Millisecond
			if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
				t.Fatal(err)
			}
			spec := workerSpec("w1")
			f.FailNext("ContainerCreate", engineError("creating container w1", http.StatusConflict, `Conflict. The container name "/w1" is already in use`))
			var inspects atomic.Int32
			f.Before("ContainerInspect", func() {
				if inspects.Add(1) == 3 && appears {
					f.addContainer("w1", strings.Repeat("e", 64), stateRunning, p.labels(spec))
				}
			})
			m, err := p.CreateMachine(ctx(t), spec)
			if !appears {
				mustKind(t, err, providers.KindTransient, "the name is taken but no container has had it")
				return
			}
			if err != nil || m.Name != "w1" || m.Phase != providers.PhaseRunning {
				t.Fatalf("got %+v, %v", m, err)
			}
		})
	}
}

func TestReadFileReturnsWhatTheBootstrapCopied(t *testing.T) {
	c := ctx(t)
	p, _ := newTestProvider(t, newFakeEngine(testImage), Options{})
	if _, err := p.EnsureInfrastructure(c); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateMachine(c, workerSpec("demo-workers-a")); err != nil {
		t.Fatal(err)
	}
	got, err := p.ReadFile(c, "demo-workers-a", "/etc/seed/join.yaml")
	if err != nil || string(got) != "token: x" {
		t.Fatalf("ReadFile: got %q, %v; want %q", got, err, "token: x")
	}
	if _, err := p.ReadFile(c, "demo-workers-a", "/nope"); !providers.IsNotFound(err) {
		t.Errorf("ReadFile of a missing file: got %v, want NotFound", err)
	}
	if _, err := p.ReadFile(c, "other", "/etc/seed/join.yaml"); !providers.IsNotFound(err) {
		t.Errorf("ReadFile of a missing machine: got %v, want NotFound", err)
	}
}

// orderEngine records the names of removed containers and can create a
// container behind the caller's back, as a live agent would.
type orderEngine struct {
	*fakeEngine
	removed  []string
	onRemove func(n int)
}

func (o *orderEngine) ContainerRemove(ctx context.Context, id string) error {
	if c, err := o.ContainerInspect(ctx, id); err == nil {
		o.removed = append(o.removed, c.Name)
	}
	if o.onRemove != nil {
		o.onRemove(len(o.removed))
	}
	return o.fakeEngine.ContainerRemove(ctx, id)
}

// The agent asked the engine to remove a worker just before `seed down`
// removed the control plane (and the agent with it); the engine carries on
// with that removal. Destroying waits for it, then removes the worker's
// volume and the network, and reports nothing left. (An e2e teardown once
// failed here with "removal of container … is already in progress".)
func TestDestroyWaitsForARemovalAlreadyUnderWay(t *testing.T) {
	c := ctx(t)
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{})
	if _, err := p.EnsureInfrastructure(c); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"demo-cp", "demo-w1"} {
		if _, err := p.CreateMachine(c, workerSpec(n)); err != nil {
			t.Fatal(err)
		}
	}
	w1, _ := f.byName("demo-w1")
	f.mu.Lock()
	f.containers[w1.ID].State = stateRemoving
	f.mu.Unlock()
	lists := 0
	f.Before("ContainerList", func() {
		if lists++; lists == 3 { // the other removal finishes
			f.mu.Lock()
			for _, v := range f.containers[w1.ID].volumes {
				delete(f.volumes, v)
			}
			delete(f.containers, w1.ID)
			f.mu.Unlock()
		}
	})
	if err := p.DestroyInfrastructure(c); err != nil {
		t.Fatalf("DestroyInfrastructure during another removal = %v", err)
	}
	if cs, ns, vs := f.counts(); cs != 0 || ns != 0 || vs != 0 {
		t.Errorf("%d containers, %d networks, %d volumes left, want none", cs, ns, vs)
	}
}

func TestDestroyRemovesTheControlPlaneFirstAndSweepsLateArrivals(t *testing.T) {
	c := ctx(t)
	f := newFakeEngine(testImage)
	o := &orderEngine{fakeEngine: f}
	p, err := newProvider(Options{ClusterName: "demo"}, o)
	if err != nil {
		t.Fatal(err)
	}
	p.pickFreePort = func() (int32, error) { return 40001, nil }
	if _, err := p.EnsureInfrastructure(c); err != nil {
		t.Fatal(err)
	}
	for _, s := range []providers.MachineSpec{workerSpec("demo-workers-a"), workerSpec("demo-workers-b"),
		{Name: "demo-control-plane", Pool: "control-plane", Role: providers.RoleControlPlane, KubernetesVersion: "v1.34.2"}} {
		if _, err := p.CreateMachine(c, s); err != nil {
			t.Fatal(err)
		}
	}
	// While the first machine goes, a worker appears (an agent mid-create).
	o.onRemove = func(n int) {
		if n == 1 {
			if _, err := p.CreateMachine(c, workerSpec("demo-workers-late")); err != nil {
				t.Error(err)
			}
		}
	}
	if err := p.DestroyInfrastructure(c); err != nil {
		t.Fatal(err)
	}
	if len(o.removed) != 4 || o.removed[0] != "demo-control-plane" || !slices.Contains(o.removed, "demo-workers-late") {
		t.Errorf("removed %v, want the control plane first and the late worker too", o.removed)
	}
	if left, _ := f.ContainerList(c, labelFilter(providers.LabelCluster, "demo")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// The engine has no batch call: CreateMachines is CreateMachine for each
// spec, and a spec that fails costs only its own machine.
func TestCreateMachinesReturnsWhatExistsInSpecOrder(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{NodeImage: testImage})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	bad := workerSpec("W_2")
	specs := []providers.MachineSpec{workerSpec("w1"), bad, workerSpec("w3"), workerSpec("w4")}
	made, err := p.CreateMachines(ctx(t), specs)
	mustKind(t, err, providers.KindInvalid, "machine name")
	var names []string
	for _, m := range made {
		names = append(names, m.Name)
	}
	if want := []string{"w1", "w3", "w4"}; !slices.Equal(names, want) {
		t.Fatalf("CreateMachines returned %v, want %v", names, want)
	}
	if n, _, _ := f.counts(); n != 3 {
		t.Errorf("%d containers, want 3", n)
	}

	// Asking again for the ones that exist returns them and creates nothing.
	again, err := p.CreateMachines(ctx(t), []providers.MachineSpec{workerSpec("w4"), workerSpec("w1")})
	if err != nil || len(again) != 2 || again[0] != made[2] || again[1] != made[0] {
		t.Fatalf("second CreateMachines = %+v, %v", again, err)
	}
	if f.Calls("ContainerCreate") != 3 {
		t.Errorf("ContainerCreate called %d times, want 3", f.Calls("ContainerCreate"))
	}
}

func TestDeclaresWhatItCanDo(t *testing.T) {
	p, _ := newTestProvider(t, newFakeEngine(testImage), Options{})
	caps := p.Capabilities()
	if !caps.PreloadedImages || caps.StagesImages || !caps.ReadsFiles || !caps.Agent.HostDockerSocket || caps.Agent.Image != "" {
		t.Errorf("Capabilities = %+v", caps)
	}
	if err := p.Preflight(ctx(t)); err != nil {
		t.Errorf("Preflight = %v", err)
	}
	err := p.StageImage(ctx(t), providers.StagedImage{Name: "agent", Data: strings.NewReader("x"), Size: 1})
	mustKind(t, err, providers.KindInvalid, "does not stage images")
}
