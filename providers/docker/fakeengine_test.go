package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/seedhq/seed/providers"
)

// fakeEngine is an in-memory engine that keeps the engine's rules the
// provider relies on: unique container names, lookups that also accept ID
// prefixes, anonymous volumes removed with their container, and a network
// name check that can be made to lose races. Tests program failures per
// method and hooks that run before a method, to interleave callers.
type fakeEngine struct {
	mu         sync.Mutex
	seq        int
	clock      time.Time
	images     map[string]bool
	imgLabels  map[string]map[string]string
	containers map[string]*fakeContainer // by ID
	networks   map[string]*network       // by ID
	volumes    map[string]*volume        // by name
	calls      map[string]int
	failures   map[string][]error
	before     map[string]func()

	// duplicateNetworks lets NetworkCreate reuse a taken name, as racing
	// creators can with the real engine.
	duplicateNetworks bool
	// info is what Info reports: a 2-CPU, 8 GiB host unless a test says.
	info engineInfo
}

type fakeContainer struct {
	container
	req      containerCreateRequest
	volumes  []string
	archives [][]byte
}

var _ engine = (*fakeEngine)(nil)

func newFakeEngine(images ...string) *fakeEngine {
	f := &fakeEngine{}
	f.Reset()
	for _, img := range images {
		f.images[img] = true
	}
	return f
}

// Reset forgets everything but the images.
func (f *fakeEngine) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.images == nil {
		f.images = map[string]bool{}
		f.imgLabels = map[string]map[string]string{}
	}
	f.clock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.containers = map[string]*fakeContainer{}
	f.networks = map[string]*network{}
	f.volumes = map[string]*volume{}
	f.calls = map[string]int{}
	f.failures = map[string][]error{}
	f.before = map[string]func(){}
	f.duplicateNetworks = false
	f.info = engineInfo{NCPU: 2, MemTotal: 8 << 30}
}

// SetHost makes Info report a host of that many CPUs and bytes of memory.
func (f *fakeEngine) SetHost(cpus, memory int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.info = engineInfo{NCPU: cpus, MemTotal: memory}
}

// FailNext makes the next calls of method return errs, in order.
func (f *fakeEngine) FailNext(method string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = append(f.failures[method], errs...)
}

// Before runs fn (outside the lock) at the start of every call of method.
func (f *fakeEngine) Before(method string, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before[method] = fn
}

func (f *fakeEngine) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// enter counts the call, runs its hook and returns a programmed failure. The
// caller holds the lock when it returns nil.
func (f *fakeEngine) enter(method string) error {
	f.mu.Lock()
	f.calls[method]++
	hook := f.before[method]
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	if errs := f.failures[method]; len(errs) > 0 {
		f.failures[method] = errs[1:]
		f.mu.Unlock()
		return errs[0]
	}
	return nil
}

func (f *fakeEngine) tick() time.Time {
	f.clock = f.clock.Add(time.Second)
	return f.clock
}

func (f *fakeEngine) newID() string {
	f.seq++
	return fmt.Sprintf("%064x", 0xc0ffee000+f.seq)
}

// engineError is what the client returns for an engine answer.
func engineError(op string, status int, msg string) error {
	return providers.NewError(kindForStatus(status), op, &apiError{StatusCode: status, Message: msg})
}

// lookup resolves like the engine: full ID, exact name, unique ID prefix.
func (f *fakeEngine) lookup(ref string) *fakeContainer {
	if c, ok := f.containers[ref]; ok {
		return c
	}
	for _, c := range f.containers {
		if c.Name == ref {
			return c
		}
	}
	var match *fakeContainer
	for id, c := range f.containers {
		if strings.HasPrefix(id, ref) {
			if match != nil {
				return nil
			}
			match = c
		}
	}
	return match
}

func (f *fakeEngine) Ping(ctx context.Context) error {
	if err := f.enter("Ping"); err != nil {
		return err
	}
	f.mu.Unlock()
	return nil
}

func (f *fakeEngine) Info(ctx context.Context) (engineInfo, error) {
	if err := f.enter("Info"); err != nil {
		return engineInfo{}, err
	}
	defer f.mu.Unlock()
	return f.info, nil
}

func (f *fakeEngine) ContainerCreate(ctx context.Context, name string, req containerCreateRequest) (string, error) {
	if err := f.enter("ContainerCreate"); err != nil {
		return "", err
	}
	defer f.mu.Unlock()
	op := "creating container " + name
	for _, c := range f.containers {
		if c.Name == name {
			return "", engineError(op, http.StatusConflict, fmt.Sprintf("Conflict. The container name \"/%s\" is already in use by container %q.", name, c.ID))
		}
	}
	if !f.images[req.Image] {
		return "", engineError(op, http.StatusNotFound, "No such image: "+req.Image)
	}
	var nw *network
	for _, n := range f.networks {
		if n.Name == req.HostConfig.NetworkMode {
			nw = n
		}
	}
	if nw == nil {
		return "", engineError(op, http.StatusNotFound, fmt.Sprintf("network %s not found", req.HostConfig.NetworkMode))
	}
	id := f.newID()
	c := &fakeContainer{
		container: container{
			ID: id, Name: name, State: stateCreated, Labels: req.Labels, Created: f.tick(),
			IPs: map[string]string{nw.Name: fmt.Sprintf("172.30.0.%d", f.seq+1)},
			Env: req.Env,
		},
		req: req,
	}
	for _, m := range req.HostConfig.Mounts {
		if m.Type == "volume" && m.Source == "" {
			v := &volume{Name: f.newID()}
			if m.VolumeOptions != nil {
				v.Labels = m.VolumeOptions.Labels
			}
			f.volumes[v.Name] = v
			c.volumes = append(c.volumes, v.Name)
		}
	}
	f.containers[id] = c
	return id, nil
}

func (f *fakeEngine) ContainerStart(ctx context.Context, id string) error {
	if err := f.enter("ContainerStart"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	c := f.lookup(id)
	if c == nil {
		return engineError("starting container "+id, http.StatusNotFound, "No such container: "+id)
	}
	c.State = stateRunning
	return nil
}

func (f *fakeEngine) ContainerInspect(ctx context.Context, ref string) (container, error) {
	if err := f.enter("ContainerInspect"); err != nil {
		return container{}, err
	}
	defer f.mu.Unlock()
	c := f.lookup(ref)
	if c == nil {
		return container{}, engineError("inspecting container "+ref, http.StatusNotFound, "No such container: "+ref)
	}
	return c.container, nil
}

func matchLabels(labels map[string]string, f filters) bool {
	for _, want := range f["label"] {
		k, v, hasValue := strings.Cut(want, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func (f *fakeEngine) ContainerList(ctx context.Context, flt filters) ([]container, error) {
	if err := f.enter("ContainerList"); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	var out []container
	for _, c := range f.containers {
		if matchLabels(c.Labels, flt) {
			out = append(out, c.container)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeEngine) ContainerRemove(ctx context.Context, id string) error {
	if err := f.enter("ContainerRemove"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	c := f.lookup(id)
	if c == nil {
		return engineError("removing container "+id, http.StatusNotFound, "No such container: "+id)
	}
	if c.State == stateRemoving {
		// As the engine answers while another caller's removal runs.
		return engineError("removing container "+id, http.StatusConflict, "removal of container "+c.ID+" is already in progress")
	}
	delete(f.containers, c.ID)
	for _, v := range c.volumes {
		delete(f.volumes, v)
	}
	return nil
}

func (f *fakeEngine) CopyToContainer(ctx context.Context, id, dir string, tar io.Reader) error {
	if err := f.enter("CopyToContainer"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	c := f.lookup(id)
	if c == nil {
		return engineError("copying files into container "+id, http.StatusNotFound, "No such container: "+id)
	}
	raw, err := io.ReadAll(tar)
	if err != nil {
		return err
	}
	c.archives = append(c.archives, raw)
	return nil
}

func (f *fakeEngine) NetworkCreate(ctx context.Context, req networkCreateRequest) (string, error) {
	if err := f.enter("NetworkCreate"); err != nil {
		return "", err
	}
	defer f.mu.Unlock()
	if !f.duplicateNetworks {
		for _, n := range f.networks {
			if n.Name == req.Name {
				return "", engineError("creating network "+req.Name, http.StatusConflict, fmt.Sprintf("network with name %s already exists", req.Name))
			}
		}
	}
	n := &network{ID: f.newID(), Name: req.Name, Labels: req.Labels, Created: f.tick()}
	f.networks[n.ID] = n
	return n.ID, nil
}

func (f *fakeEngine) NetworkList(ctx context.Context, flt filters) ([]network, error) {
	if err := f.enter("NetworkList"); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	var out []network
	for _, n := range f.networks {
		if names := flt["name"]; len(names) > 0 && !strings.Contains(n.Name, names[0]) {
			continue
		}
		if matchLabels(n.Labels, flt) {
			out = append(out, *n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeEngine) NetworkRemove(ctx context.Context, id string) error {
	if err := f.enter("NetworkRemove"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	n, ok := f.networks[id]
	if !ok {
		return engineError("removing network "+id, http.StatusNotFound, "network "+id+" not found")
	}
	for _, c := range f.containers {
		if _, attached := c.IPs[n.Name]; attached {
			return engineError("removing network "+id, http.StatusForbidden, "error while removing network: network "+n.Name+" has active endpoints")
		}
	}
	delete(f.networks, id)
	return nil
}

func (f *fakeEngine) networkByName(name string) *network {
	for _, n := range f.networks {
		if n.Name == name || n.ID == name {
			return n
		}
	}
	return nil
}

func (f *fakeEngine) NetworkConnect(ctx context.Context, network, ref string) error {
	if err := f.enter("NetworkConnect"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	op := "connecting container " + ref + " to network " + network
	n := f.networkByName(network)
	if n == nil {
		return engineError(op, http.StatusNotFound, "network "+network+" not found")
	}
	c := f.lookup(ref)
	if c == nil {
		return engineError(op, http.StatusNotFound, "No such container: "+ref)
	}
	if _, ok := c.IPs[n.Name]; ok {
		return engineError(op, http.StatusForbidden, "endpoint with name "+c.Name+" already exists in network "+n.Name)
	}
	c.IPs[n.Name] = fmt.Sprintf("172.31.0.%d", f.seq+1)
	f.seq++
	return nil
}

func (f *fakeEngine) NetworkDisconnect(ctx context.Context, network, ref string) error {
	if err := f.enter("NetworkDisconnect"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	op := "disconnecting container " + ref + " from network " + network
	n := f.networkByName(network)
	if n == nil {
		return engineError(op, http.StatusNotFound, "network "+network+" not found")
	}
	c := f.lookup(ref)
	if c == nil {
		return engineError(op, http.StatusNotFound, "No such container: "+ref)
	}
	if _, ok := c.IPs[n.Name]; !ok {
		return engineError(op, http.StatusForbidden, "container "+c.Name+" is not connected to network "+n.Name)
	}
	delete(c.IPs, n.Name)
	return nil
}

func (f *fakeEngine) VolumeList(ctx context.Context, flt filters) ([]volume, error) {
	if err := f.enter("VolumeList"); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	var out []volume
	for _, v := range f.volumes {
		if matchLabels(v.Labels, flt) {
			out = append(out, *v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeEngine) VolumeRemove(ctx context.Context, name string) error {
	if err := f.enter("VolumeRemove"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if _, ok := f.volumes[name]; !ok {
		return engineError("removing volume "+name, http.StatusNotFound, "get "+name+": no such volume")
	}
	for _, c := range f.containers {
		for _, v := range c.volumes {
			if v == name {
				return engineError("removing volume "+name, http.StatusConflict, "remove "+name+": volume is in use - ["+c.ID+"]")
			}
		}
	}
	delete(f.volumes, name)
	return nil
}

// container returns a copy of the container named name, for assertions.
func (f *fakeEngine) byName(name string) (fakeContainer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.Name == name {
			return *c, true
		}
	}
	return fakeContainer{}, false
}

func (f *fakeEngine) counts() (containers, networks, volumes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.containers), len(f.networks), len(f.volumes)
}

// addContainer plants a container as someone else would have made it.
func (f *fakeEngine) addContainer(name, id, state string, labels map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id] = &fakeContainer{container: container{ID: id, Name: name, State: state, Labels: labels, Created: f.tick()}}
}

// addNetwork plants a network as someone else would have made it.
func (f *fakeEngine) addNetwork(name string, labels map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := &network{ID: f.newID(), Name: name, Labels: labels, Created: f.tick()}
	f.networks[n.ID] = n
	return n.ID
}

// CopyFromContainer finds path in the archives copied into the container.
func (f *fakeEngine) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error) {
	if err := f.enter("CopyFromContainer"); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	c := f.lookup(id)
	if c == nil {
		return nil, engineError("reading from container "+id, http.StatusNotFound, "No such container: "+id)
	}
	for i := len(c.archives) - 1; i >= 0; i-- {
		tr := tar.NewReader(bytes.NewReader(c.archives[i]))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if "/"+strings.TrimPrefix(h.Name, "/") != path {
				continue
			}
			body, _ := io.ReadAll(tr)
			var out bytes.Buffer
			tw := tar.NewWriter(&out)
			_ = tw.WriteHeader(&tar.Header{Name: filepath.Base(path), Mode: 0o600, Size: int64(len(body))})
			_, _ = tw.Write(body)
			_ = tw.Close()
			return io.NopCloser(&out), nil
		}
	}
	return nil, engineError("reading from container "+id, http.StatusNotFound, "Could not find the file "+path+" in container "+id)
}

// labelImage gives an image labels, as a build would.
func (f *fakeEngine) labelImage(ref string, labels map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[ref] = true
	f.imgLabels[ref] = labels
}

func (f *fakeEngine) ImageInspect(ctx context.Context, ref string) (image, error) {
	if err := f.enter("ImageInspect"); err != nil {
		return image{}, err
	}
	defer f.mu.Unlock()
	if !f.images[ref] {
		return image{}, engineError("inspecting image "+ref, http.StatusNotFound, "No such image: "+ref)
	}
	return image{ID: "sha256:" + ref, Labels: f.imgLabels[ref]}, nil
}

// ImageSave exports an image as its own name, repeated: what a test can
// recognise in the container.
func (f *fakeEngine) ImageSave(ctx context.Context, ref string) (io.ReadCloser, error) {
	if err := f.enter("ImageSave"); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if !f.images[ref] {
		return nil, engineError("exporting image "+ref, http.StatusNotFound, "reference does not exist")
	}
	return io.NopCloser(strings.NewReader(strings.Repeat("image "+ref+"\n", 100))), nil
}
