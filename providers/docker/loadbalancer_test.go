package docker

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/seedhq/seed/providers"
)

const testLBImage = "seed-agent:test"

func TestEnsureInfrastructureCreatesAndStartsTheLoadBalancer(t *testing.T) {
	f := newFakeEngine(testImage, testLBImage)
	p, _ := newTestProvider(t, f, Options{LBImage: testLBImage})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	lb, ok := f.byName("demo-lb")
	if !ok {
		t.Fatal("no container demo-lb")
	}
	req := lb.req
	if lb.State != stateRunning || req.Image != testLBImage ||
		!slices.Equal(req.Cmd, []string{"lb", "--listen", ":6443", "--backends", "demo-apiservers:6443"}) {
		t.Errorf("load balancer: state %s, image %s, cmd %v", lb.State, req.Image, req.Cmd)
	}
	if got := req.NetworkingConfig.EndpointsConfig["seed-demo"].Aliases; !slices.Equal(got, []string{"demo-control-plane"}) {
		t.Errorf("aliases = %v, want the endpoint's name", got)
	}
	if got := req.HostConfig.PortBindings["6443/tcp"]; len(got) != 1 || got[0] != (portBinding{HostIP: "127.0.0.1", HostPort: "40001"}) {
		t.Errorf("port bindings = %v", req.HostConfig.PortBindings)
	}
	if req.HostConfig.RestartPolicy == nil || req.HostConfig.RestartPolicy.Name != "unless-stopped" ||
		lb.Labels[providers.LabelCluster] != "demo" || lb.Labels[LabelComponent] != "load-balancer" {
		t.Errorf("restart policy %+v, labels %v", req.HostConfig.RestartPolicy, lb.Labels)
	}

	// It is not a machine, and no machine call treats it as one.
	if ms, err := p.ListMachines(ctx(t)); err != nil || len(ms) != 0 {
		t.Errorf("ListMachines = %+v, %v; want no machines", ms, err)
	}
	spec := workerSpec("demo-lb")
	if _, err := p.CreateMachine(ctx(t), spec); !providers.IsInvalid(err) {
		t.Errorf("CreateMachine named like the load balancer = %v, want Invalid", err)
	}
	if err := p.DeleteMachine(ctx(t), "demo-lb"); !providers.IsInvalid(err) {
		t.Errorf("DeleteMachine of the load balancer = %v, want Invalid", err)
	}

	// Found stopped (docker stop), it is started again; found running,
	// nothing is done.
	f.mu.Lock()
	f.containers[lb.ID].State = stateExited
	f.mu.Unlock()
	for range 2 {
		if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if lb, _ := f.byName("demo-lb"); lb.State != stateRunning || f.Calls("ContainerCreate") != 1 || f.Calls("ContainerStart") != 2 {
		t.Errorf("after a stop: state %s, %d creates, %d starts; want running, 1, 2", lb.State, f.Calls("ContainerCreate"), f.Calls("ContainerStart"))
	}
}

func TestConcurrentEnsureInfrastructureMakesOneLoadBalancer(t *testing.T) {
	f := newFakeEngine(testImage, testLBImage)
	p, _ := newTestProvider(t, f, Options{LBImage: testLBImage})
	if _, err := p.ensureNetwork(ctx(t)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		q, _ := newTestProvider(t, f, Options{LBImage: testLBImage})
		wg.Go(func() { _, errs[i] = q.EnsureInfrastructure(ctx(t)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := f.counts(); n != 1 {
		t.Fatalf("%d containers, want one load balancer", n)
	}
	if lb, _ := f.byName("demo-lb"); lb.State != stateRunning {
		t.Fatalf("load balancer is %s", lb.State)
	}
}

func TestEnsureInfrastructureLoadBalancerErrors(t *testing.T) {
	t.Run("its image is missing: Invalid, saying how to build it", func(t *testing.T) {
		f := newFakeEngine(testImage)
		p, _ := newTestProvider(t, f, Options{LBImage: testLBImage})
		_, err := p.EnsureInfrastructure(ctx(t))
		mustKind(t, err, providers.KindInvalid, "hack/build-agent-image.sh")
	})
	t.Run("its name is taken by a stranger: Invalid", func(t *testing.T) {
		f := newFakeEngine(testImage, testLBImage)
		p, _ := newTestProvider(t, f, Options{LBImage: testLBImage})
		f.addContainer("demo-lb", "abc123", stateRunning, map[string]string{"app": "other"})
		_, err := p.EnsureInfrastructure(ctx(t))
		mustKind(t, err, providers.KindInvalid, "not Seed's")
	})
	t.Run("without an image, a missing one is left to the seed", func(t *testing.T) {
		f := newFakeEngine(testImage)
		p, _ := newTestProvider(t, f, Options{})
		if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if f.Calls("ContainerCreate") != 0 {
			t.Fatal("created a container with no image")
		}
	})
	t.Run("a start that fails is retried, then reported", func(t *testing.T) {
		f := newFakeEngine(testImage, testLBImage)
		p, _ := newTestProvider(t, f, Options{LBImage: testLBImage})
		busy := engineError("starting container", http.StatusInternalServerError, "Bind for 127.0.0.1:40001 failed: port is already allocated")
		f.FailNext("ContainerStart", busy, busy)
		if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
			t.Fatalf("a start failing twice then working = %v", err)
		}
	})
}

// legacyControlPlane plants a control plane as a cluster made before the
// load balancer has it: named like the endpoint, carrying its alias and
// the port, with no endpoint label.
func legacyControlPlane(t *testing.T, f *fakeEngine, p *provider) {
	t.Helper()
	spec := workerSpec("demo-control-plane")
	spec.Role, spec.Pool = providers.RoleControlPlane, "control-plane"
	req := nodeContainer(nodeParams{Name: spec.Name, Image: testImage, Network: p.network, Labels: p.labels(spec)})
	req.NetworkingConfig.EndpointsConfig[p.network] = endpointConfig{Aliases: []string{"demo-control-plane"}}
	req.HostConfig.PortBindings = map[string][]portBinding{"6443/tcp": {{HostIP: "127.0.0.1", HostPort: "40001"}}}
	id, err := f.ContainerCreate(ctx(t), spec.Name, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ContainerStart(ctx(t), id); err != nil {
		t.Fatal(err)
	}
}

func TestAnOlderClusterGetsTheLoadBalancerWhenItsControlPlaneGoes(t *testing.T) {
	f := newFakeEngine(testImage, testLBImage)
	// The cluster as an older seed made it: network, then a control plane
	// that publishes the endpoint itself.
	old, _ := newTestProvider(t, f, Options{})
	if _, err := old.ensureNetwork(ctx(t)); err != nil {
		t.Fatal(err)
	}
	legacyControlPlane(t, f, old)

	// seed up again: the load balancer is made but left stopped, since the
	// port is taken and a running container's bindings cannot change.
	p, _ := newTestProvider(t, f, Options{LBImage: testLBImage})
	infra, err := p.EnsureInfrastructure(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if infra.ExternalEndpoint != "127.0.0.1:40001" || infra.ControlPlaneEndpoint != "demo-control-plane:6443" {
		t.Errorf("endpoints changed: %+v", infra)
	}
	lb, ok := f.byName("demo-lb")
	if !ok || lb.State != stateCreated {
		t.Fatalf("load balancer: found %v, state %q; want created, not started", ok, lb.State)
	}
	if ms, _ := p.ListMachines(ctx(t)); len(ms) != 1 || ms[0].Name != "demo-control-plane" {
		t.Errorf("machines = %+v", ms)
	}

	// A new control plane (the surge) answers under both names while the
	// old one lives. The agent's copy of the provider knows no image.
	agent, _ := newTestProvider(t, f, Options{})
	cp2 := workerSpec("demo-control-plane-2")
	cp2.Role, cp2.Pool = providers.RoleControlPlane, "control-plane"
	if _, err := agent.CreateMachine(ctx(t), cp2); err != nil {
		t.Fatal(err)
	}
	c2, _ := f.byName(cp2.Name)
	if got := c2.req.NetworkingConfig.EndpointsConfig["seed-demo"].Aliases; !slices.Equal(got, []string{"demo-apiservers", "demo-control-plane"}) {
		t.Errorf("new control plane's aliases = %v, want the backend's and the endpoint's", got)
	}
	if len(c2.req.HostConfig.PortBindings) != 0 {
		t.Errorf("new control plane publishes %v", c2.req.HostConfig.PortBindings)
	}
	// Deleting a worker or the new control plane does not start it.
	if err := agent.DeleteMachine(ctx(t), "demo-missing"); err != nil {
		t.Fatal(err)
	}
	if lb, _ := f.byName("demo-lb"); lb.State != stateCreated {
		t.Fatalf("load balancer started while the old control plane holds the port")
	}

	// The old control plane goes: the load balancer starts right after.
	if err := agent.DeleteMachine(ctx(t), "demo-control-plane"); err != nil {
		t.Fatal(err)
	}
	if lb, _ := f.byName("demo-lb"); lb.State != stateRunning {
		t.Fatalf("after the old control plane went, the load balancer is %s", lb.State)
	}

	// From now on control planes carry the backend alias only.
	cp3 := cp2
	cp3.Name = "demo-control-plane-3"
	if _, err := agent.CreateMachine(ctx(t), cp3); err != nil {
		t.Fatal(err)
	}
	c3, _ := f.byName(cp3.Name)
	if got := c3.req.NetworkingConfig.EndpointsConfig["seed-demo"].Aliases; !slices.Equal(got, []string{"demo-apiservers"}) {
		t.Errorf("aliases = %v", got)
	}
}

func TestDestroyInfrastructureRemovesTheLoadBalancerAfterTheMachines(t *testing.T) {
	f := newFakeEngine(testImage, testLBImage)
	o := &orderEngine{fakeEngine: f}
	p, err := newProvider(Options{ClusterName: "demo", LBImage: testLBImage}, o)
	if err != nil {
		t.Fatal(err)
	}
	p.pickFreePort = func() (int32, error) { return 40001, nil }
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	cp := workerSpec("demo-control-plane-1")
	cp.Role = providers.RoleControlPlane
	for _, s := range []providers.MachineSpec{workerSpec("demo-workers-a"), cp} {
		if _, err := p.CreateMachine(ctx(t), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.DestroyInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.removed, []string{"demo-control-plane-1", "demo-workers-a", "demo-lb"}) {
		t.Errorf("removed %v, want the control plane, the worker, then the load balancer", o.removed)
	}
	if n, nw, v := f.counts(); n+nw+v != 0 {
		t.Fatalf("left %d containers, %d networks, %d volumes", n, nw, v)
	}
}
