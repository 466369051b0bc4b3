package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedhq/seed/providers"
)

// requireEngine returns a client for the local engine, skipping the test
// when there is none, unless CI=true: there a missing engine is a failure.
func requireEngine(t *testing.T) *client {
	t.Helper()
	c := newClient(DefaultSocket)
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and the real-engine test needs Docker: %v", err)
		}
		t.Skipf("no Docker engine (set CI=true to make this a failure): %v", err)
	}
	return c
}

// sleeperImage builds, once per content, a tiny image standing in for the
// node image: the static sleeper binary and a file under /var, to check
// that the /var volume starts from the image's content.
func sleeperImage(t *testing.T, c *client) string {
	t.Helper()
	return testImageOf(t, c, "sleeper", "seed-test-sleeper", "sleeper", []byte("from-image"))
}

// lbImage builds, once per content, the load balancer's stand-in for the
// agent image: package lb behind an entrypoint named like the agent.
func lbImage(t *testing.T, c *client) string {
	t.Helper()
	return testImageOf(t, c, "lb", "seed-test-lb", "agent", nil)
}

// testImageOf builds testdata/<dir> into an image FROM scratch whose
// entrypoint is /<bin>, with marker as /var/marker when set.
func testImageOf(t *testing.T, c *client, dir, repo, bin string, marker []byte) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if dir == "lb" {
		for _, f := range []string{"lb.go", "command.go"} {
			more, err := os.ReadFile(filepath.Join("..", "..", "agent", "lb", f))
			if err != nil {
				t.Fatal(err)
			}
			src = append(src, more...)
		}
	}
	sum := sha256.Sum256(append(src, runtime.Version()+runtime.GOARCH...))
	tag := hex.EncodeToString(sum[:6])
	ref := repo + ":" + tag

	v, err := c.apiVersion(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := c.send(ctx(t), "inspecting image", http.MethodGet, "/v"+v+"/images/"+ref+"/json", nil, nil, ""); err == nil {
		resp.Body.Close()
		return ref
	} else if !providers.IsNotFound(err) {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), bin)
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/"+dir)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/%s: %v\n%s", dir, err, out)
	}
	binary, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	type file struct {
		name string
		mode int64
		data []byte
	}
	files := []file{{bin, 0o755, binary}}
	if marker != nil {
		files = append(files, file{"var/marker", 0o644, marker})
	}
	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(f.data)
	}
	_ = tw.Close()

	q := url.Values{"fromSrc": {"-"}, "repo": {repo}, "tag": {tag}, "changes": {`ENTRYPOINT ["/` + bin + `"]`}}
	resp, err := c.send(ctx(t), "importing image "+ref, http.MethodPost, "/v"+v+"/images/create", q, &rootfs, "application/x-tar")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	progress, _ := io.ReadAll(resp.Body)
	if bytes.Contains(progress, []byte(`"error"`)) {
		t.Fatalf("importing image %s: %s", ref, progress)
	}
	return ref
}

// removeByLabel removes whatever carries the cluster label, whatever the
// provider did or did not do.
func removeByLabel(c *client, cluster string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owned := labelFilter(providers.LabelCluster, cluster)
	if cs, err := c.ContainerList(ctx, owned); err == nil {
		for _, ct := range cs {
			_ = c.ContainerRemove(ctx, ct.ID)
		}
	}
	if vs, err := c.VolumeList(ctx, owned); err == nil {
		for _, v := range vs {
			_ = c.VolumeRemove(ctx, v.Name)
		}
	}
	if ns, err := c.NetworkList(ctx, owned); err == nil {
		for _, n := range ns {
			_ = c.NetworkRemove(ctx, n.ID)
		}
	}
}

// askMachine connects to the sleeper's port at addr and returns its report.
func askMachine(t *testing.T, addr string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			var r map[string]string
			err = json.NewDecoder(conn).Decode(&r)
			conn.Close()
			if err == nil {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("asking the machine at %s: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRealEngine(t *testing.T) {
	c := requireEngine(t)
	image := sleeperImage(t, c)
	balancer := lbImage(t, c)

	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	cluster := "seedtest-" + hex.EncodeToString(suffix)
	t.Cleanup(func() { removeByLabel(c, cluster) })
	owned := labelFilter(providers.LabelCluster, cluster)

	newP := func() providers.Provider {
		p, err := New(Options{ClusterName: cluster, NodeImage: image, LBImage: balancer})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newP()

	infra, err := p.EnsureInfrastructure(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := newP().EnsureInfrastructure(ctx(t)); err != nil || !equalInfra(again, infra) {
		t.Fatalf("second EnsureInfrastructure = %+v, %v; first %+v", again, err, infra)
	}
	if infra.ControlPlaneEndpoint != cluster+"-control-plane:6443" || !strings.HasPrefix(infra.ExternalEndpoint, "127.0.0.1:") {
		t.Fatalf("infrastructure = %+v", infra)
	}

	cp := workerSpec(cluster + "-cp")
	cp.Role = providers.RoleControlPlane
	cp.Bootstrap.Files = []providers.File{{Path: "/etc/seed/hello", Mode: 0o600, Content: []byte("hello cp")}}
	if _, err := p.CreateMachine(ctx(t), cp); err != nil {
		t.Fatal(err)
	}

	// Two processes ask for the same worker at once: one container.
	w1 := workerSpec(cluster + "-w1")
	w1.Bootstrap.Files = []providers.File{{Path: "/etc/seed/hello", Mode: 0o644, Content: []byte("hello w1")}}
	// An image the (unlabelled) node image lacks is shipped from the engine.
	w1.Images = []string{balancer}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		q := newP()
		wg.Go(func() { _, errs[i] = q.CreateMachine(ctx(t), w1) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent CreateMachine %d: %v", i, err)
		}
	}

	ms, err := p.ListMachines(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("listed %d machines, want 2: %+v", len(ms), ms)
	}
	for _, m := range ms {
		if m.Phase != providers.PhaseRunning || m.InternalIP == "" || m.ProviderID != "seed://docker/"+cluster+"/"+m.Name ||
			time.Since(m.CreatedAt) > 5*time.Minute || m.Pool != "workers" {
			t.Errorf("machine = %+v", m)
		}
	}

	// The control plane answers on the published port, through the load
	// balancer (the sleeper has no /readyz: with no backend ready, it sends
	// connections to every one), and saw its bootstrap.
	got := askMachine(t, infra.ExternalEndpoint)
	for k, want := range map[string]string{
		"hostname": cp.Name, "providerID": "seed://docker/" + cluster + "/" + cp.Name,
		"script": cp.Bootstrap.Script, "scriptMode": "-rwx------", "file": "hello cp",
		"marker": "from-image", "dockerSocket": "yes",
	} {
		if got[k] != want {
			t.Errorf("control plane: %s = %q, want %q", k, got[k], want)
		}
	}
	// The worker, on its address on the cluster network.
	var worker providers.Machine
	for _, m := range ms {
		if m.Name == w1.Name {
			worker = m
		}
	}
	got = askMachine(t, net.JoinHostPort(worker.InternalIP, "6443"))
	if got["hostname"] != w1.Name || got["file"] != "hello w1" || got["marker"] != "from-image" || got["dockerSocket"] != "" {
		t.Errorf("worker report = %v", got)
	}

	rc, err := c.CopyFromContainer(ctx(t), worker.Name, imageTarPath(normalizeImageRef(balancer)))
	if err != nil {
		t.Fatalf("the shipped image is not on the worker: %v", err)
	}
	h, err := tar.NewReader(rc).Next()
	rc.Close()
	if err != nil || h.Size < 1<<20 {
		t.Fatalf("shipped image: %+v, %v", h, err)
	}

	vols, err := c.VolumeList(ctx(t), owned)
	if err != nil || len(vols) != 2 {
		t.Fatalf("labelled volumes = %+v, %v; want one per machine", vols, err)
	}

	if err := p.DeleteMachine(ctx(t), w1.Name); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteMachine(ctx(t), w1.Name); err != nil {
		t.Fatalf("deleting a deleted machine = %v", err)
	}
	if ms, err := p.ListMachines(ctx(t)); err != nil || len(ms) != 1 || ms[0].Name != cp.Name {
		t.Fatalf("after delete: %+v, %v", ms, err)
	}
	if vols, _ := c.VolumeList(ctx(t), labelFilter(providers.LabelMachine, w1.Name)); len(vols) != 0 {
		t.Fatalf("the deleted machine's volume is left: %+v", vols)
	}

	for range 2 {
		if err := p.DestroyInfrastructure(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	cs, err1 := c.ContainerList(ctx(t), owned)
	vs, err2 := c.VolumeList(ctx(t), owned)
	ns, err3 := c.NetworkList(ctx(t), owned)
	if len(cs)+len(vs)+len(ns) != 0 || err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("left after destroy: %d containers, %d volumes, %d networks (%v %v %v)", len(cs), len(vs), len(ns), err1, err2, err3)
	}
}

func TestRealEngineHandsAnOlderClustersEndpointToTheLoadBalancer(t *testing.T) {
	c := requireEngine(t)
	image := sleeperImage(t, c)
	balancer := lbImage(t, c)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	cluster := "seedtest-" + hex.EncodeToString(suffix)
	t.Cleanup(func() { removeByLabel(c, cluster) })

	// The cluster as an older seed made it: its first control plane is
	// named like the endpoint and publishes it.
	older, err := newProvider(Options{ClusterName: cluster, NodeImage: image}, c)
	if err != nil {
		t.Fatal(err)
	}
	nw, err := older.ensureNetwork(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	port, _ := older.recordedPort(nw)
	spec := workerSpec(cluster + "-control-plane")
	spec.Role, spec.Pool = providers.RoleControlPlane, "control-plane"
	req := nodeContainer(nodeParams{Name: spec.Name, Image: image, Network: older.network, Labels: older.labels(spec)})
	req.NetworkingConfig.EndpointsConfig[older.network] = endpointConfig{Aliases: []string{cluster + "-control-plane"}}
	req.ExposedPorts = map[string]struct{}{apiServerContainerPort: {}}
	req.HostConfig.PortBindings = map[string][]portBinding{apiServerContainerPort: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(int(port))}}}
	id, err := c.ContainerCreate(ctx(t), spec.Name, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx(t), id); err != nil {
		t.Fatal(err)
	}

	// seed up, with this provider: the load balancer exists, stopped, and
	// the endpoint is still the old control plane.
	p, err := New(Options{ClusterName: cluster, NodeImage: image, LBImage: balancer})
	if err != nil {
		t.Fatal(err)
	}
	infra, err := p.EnsureInfrastructure(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if lb, err := c.ContainerInspect(ctx(t), cluster+"-lb"); err != nil || lb.State != stateCreated {
		t.Fatalf("load balancer = %+v, %v; want created, not started", lb, err)
	}
	if got := askMachine(t, infra.ExternalEndpoint); got["hostname"] != spec.Name {
		t.Fatalf("the endpoint answers as %q, want the old control plane", got["hostname"])
	}

	// The surge: a new control plane, then the old one goes and the load
	// balancer takes the port, and answers with the new one.
	cp2 := spec
	cp2.Name = cluster + "-control-plane-2"
	if _, err := p.CreateMachine(ctx(t), cp2); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.DeleteMachine(ctx(t), spec.Name); err != nil {
		t.Fatal(err)
	}
	if got := askMachine(t, infra.ExternalEndpoint); got["hostname"] != cp2.Name {
		t.Fatalf("after the hand-over the endpoint answers as %q, want %s", got["hostname"], cp2.Name)
	}
	t.Logf("endpoint back %s after the old control plane's removal began", time.Since(start).Round(10*time.Millisecond))
	if err := p.DestroyInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
