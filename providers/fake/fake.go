package fake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/seedhq/seed/providers"
)

// Method names, as counted and as used to program failures.
const (
	MethodEnsureInfrastructure  = "EnsureInfrastructure"
	MethodDestroyInfrastructure = "DestroyInfrastructure"
	MethodCreateMachine         = "CreateMachine"
	MethodDeleteMachine         = "DeleteMachine"
	MethodListMachines          = "ListMachines"
	MethodCreateMachines        = "CreateMachines"
	MethodPreflight             = "Preflight"
	MethodStageImage            = "StageImage"
	MethodReadFile              = "ReadFile"
	MethodLoadImage             = "LoadImage"
	MethodMoveEndpoint          = "MoveEndpoint"
	MethodEnsureBackupStore     = "EnsureBackupStore"
	MethodDeleteBackupStore     = "DeleteBackupStore"
	MethodMachineTypeResources  = "MachineTypeResources"
)

// DefaultMachineResources is what a machine of the empty type offers until
// SetMachineType says otherwise.
var DefaultMachineResources = providers.MachineResources{MilliCPU: 2000, Memory: 8 << 30, Pods: 110}

// Provider is an in-memory providers.Provider. Its exported methods beyond
// the interface are for tests to program and inspect it. It has every
// capability a provider can declare, so tests drive the paths the AWS
// provider takes (batches, staging, images pulled) as well as Docker's
// (reading files); SetCapabilities narrows them.
type Provider struct {
	mu       sync.Mutex
	caps     providers.Capabilities
	staged   map[string]StagedImage
	files    map[string]map[string][]byte
	loaded   map[string][]string
	clock    func() time.Time
	machines map[string]providers.Machine
	calls    map[string]int
	failures map[string][]error
	delays   map[string]time.Duration
	infra    providers.Infrastructure
	// endpoint is the machine MoveEndpoint last named.
	endpoint string
	// types are the machine types MachineTypeResources knows.
	types map[string]providers.MachineResources
	// store is the backup store EnsureBackupStore made, until
	// DeleteBackupStore.
	store *providers.BackupStore
	// interrupt is how many coming creates stop halfway; halfMade are the
	// machines they left.
	interrupt int
	halfMade  map[string]bool
	// requested counts machine specs asked for, by either create method.
	requested int
	// batchFails are programmed partial failures of coming CreateMachines
	// calls, applied in order.
	batchFails []batchFailure

	// OnCreate, when set, runs after a machine is created (outside the lock),
	// for example to register a Node object and simulate a join.
	OnCreate func(providers.Machine)
	// OnDelete, when set, runs after a machine is deleted (outside the lock).
	OnDelete func(name string)
}

var _ providers.Provider = (*Provider)(nil)

// StagedImage is an image as StageImage received it.
type StagedImage struct {
	Workers bool
	Data    []byte
}

type batchFailure struct {
	made int
	err  error
}

// New returns an empty fake provider using clock for creation times
// (time.Now when nil).
func New(clock func() time.Time) *Provider {
	if clock == nil {
		clock = time.Now
	}
	return &Provider{
		clock:    clock,
		machines: map[string]providers.Machine{},
		calls:    map[string]int{},
		failures: map[string][]error{},
		delays:   map[string]time.Duration{},
		halfMade: map[string]bool{},
		caps:     providers.Capabilities{StagesImages: true, ReadsFiles: true},
		staged:   map[string]StagedImage{},
		files:    map[string]map[string][]byte{},
		loaded:   map[string][]string{},
		types:    map[string]providers.MachineResources{"": DefaultMachineResources},
		infra: providers.Infrastructure{
			ControlPlaneEndpoint: "fake-control-plane:6443",
			ExternalEndpoint:     "127.0.0.1:6443",
		},
	}
}

// Name implements providers.Provider.
func (p *Provider) Name() string { return "fake" }

// Capabilities implements providers.Provider: by default images are pulled
// and staged and files can be read, as SetCapabilities last said otherwise.
func (p *Provider) Capabilities() providers.Capabilities {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.caps
}

// SetCapabilities replaces what the provider declares, for example to
// stand in for Docker (images preloaded, nothing staged).
func (p *Provider) SetCapabilities(c providers.Capabilities) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.caps = c
}

// FailNext makes the next len(errs) calls of method return those errors in order.
func (p *Provider) FailNext(method string, errs ...error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures[method] = append(p.failures[method], errs...)
}

// InterruptCreates makes the next n creates stop halfway, as a process
// killed between a provider's steps would (a Docker container created but
// never started): the machine is listed, Pending, and the call fails. Only a
// later CreateMachine of the same name finishes it.
func (p *Provider) InterruptCreates(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.interrupt = n
}

// FailBatchAfter makes the next CreateMachines call create only its first
// made machines and then return err, as an EC2 RunInstances that runs out
// of capacity part way through a batch does.
func (p *Provider) FailBatchAfter(made int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batchFails = append(p.batchFails, batchFailure{made: made, err: err})
}

// Delay makes every call of method wait d (or until its context ends) first.
func (p *Provider) Delay(method string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delays[method] = d
}

// Calls returns how many times method was called.
func (p *Provider) Calls(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[method]
}

// TotalCalls returns how many provider calls were made, of any method.
func (p *Provider) TotalCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		n += c
	}
	return n
}

// Requested returns how many machines were asked for, one per spec, by
// CreateMachine or CreateMachines.
func (p *Provider) Requested() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requested
}

// ResetCalls zeroes the call counters.
func (p *Provider) ResetCalls() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = map[string]int{}
}

// Add puts a machine in place directly, as if created out of band.
func (p *Provider) Add(m providers.Machine) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.Phase == "" {
		m.Phase = providers.PhaseRunning
	}
	if m.ProviderID == "" {
		m.ProviderID = "fake://" + m.Name
	}
	p.machines[m.Name] = m
}

// SetPhase changes a machine's phase, as if it stopped or failed.
func (p *Provider) SetPhase(name string, phase providers.Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m, ok := p.machines[name]; ok {
		m.Phase = phase
		p.machines[name] = m
	}
}

// Remove deletes a machine behind the cluster's back, as `docker rm -f` would.
func (p *Provider) Remove(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.machines, name)
}

// Machines returns the machines sorted by name, without counting a call.
func (p *Provider) Machines() []providers.Machine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sortedLocked()
}

// begin counts a call, applies its delay and returns a programmed failure.
func (p *Provider) begin(ctx context.Context, method string) error {
	p.mu.Lock()
	p.calls[method]++
	d := p.delays[method]
	var err error
	if q := p.failures[method]; len(q) > 0 {
		err, p.failures[method] = q[0], q[1:]
	}
	p.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// EnsureInfrastructure implements providers.Provider.
func (p *Provider) EnsureInfrastructure(ctx context.Context) (providers.Infrastructure, error) {
	if err := p.begin(ctx, MethodEnsureInfrastructure); err != nil {
		return providers.Infrastructure{}, err
	}
	return p.infra, nil
}

// DestroyInfrastructure implements providers.Provider.
func (p *Provider) DestroyInfrastructure(ctx context.Context) error {
	if err := p.begin(ctx, MethodDestroyInfrastructure); err != nil {
		return err
	}
	p.mu.Lock()
	p.machines = map[string]providers.Machine{}
	p.files = map[string]map[string][]byte{}
	p.staged = map[string]StagedImage{}
	p.mu.Unlock()
	return nil
}

// CreateMachine implements providers.Provider.
func (p *Provider) CreateMachine(ctx context.Context, spec providers.MachineSpec) (providers.Machine, error) {
	if err := p.begin(ctx, MethodCreateMachine); err != nil {
		return providers.Machine{}, err
	}
	return p.create(spec)
}

// create makes one machine, idempotently by name.
func (p *Provider) create(spec providers.MachineSpec) (providers.Machine, error) {
	p.mu.Lock()
	p.requested++
	p.mu.Unlock()
	if spec.Name == "" {
		return providers.Machine{}, providers.NewError(providers.KindInvalid, "creating machine", fmt.Errorf("machine name is empty"))
	}
	p.mu.Lock()
	if m, ok := p.machines[spec.Name]; ok {
		if !p.halfMade[spec.Name] {
			p.mu.Unlock()
			return m, nil
		}
		// Finishing what an interrupted create started.
		delete(p.halfMade, spec.Name)
		m.Phase = providers.PhaseRunning
		p.machines[spec.Name] = m
		hook := p.OnCreate
		p.mu.Unlock()
		if hook != nil {
			hook(m)
		}
		return m, nil
	}
	m := providers.Machine{
		Name:              spec.Name,
		Pool:              spec.Pool,
		Role:              spec.Role,
		MachineType:       spec.MachineType,
		KubernetesVersion: spec.KubernetesVersion,
		ProviderID:        "fake://" + spec.Name,
		Phase:             providers.PhaseRunning,
		CreatedAt:         p.clock(),
	}
	if p.interrupt > 0 {
		p.interrupt--
		m.Phase = providers.PhasePending
		p.machines[spec.Name] = m
		p.halfMade[spec.Name] = true
		p.mu.Unlock()
		return providers.Machine{}, providers.NewError(providers.KindTransient, "creating machine "+spec.Name, fmt.Errorf("interrupted halfway"))
	}
	p.machines[spec.Name] = m
	hook := p.OnCreate
	p.mu.Unlock()
	if hook != nil {
		hook(m)
	}
	return m, nil
}

// DeleteMachine implements providers.Provider.
func (p *Provider) DeleteMachine(ctx context.Context, name string) error {
	if err := p.begin(ctx, MethodDeleteMachine); err != nil {
		return err
	}
	p.mu.Lock()
	_, existed := p.machines[name]
	delete(p.machines, name)
	delete(p.files, name)
	hook := p.OnDelete
	p.mu.Unlock()
	if existed && hook != nil {
		hook(name)
	}
	return nil
}

// ListMachines implements providers.Provider.
func (p *Provider) ListMachines(ctx context.Context) ([]providers.Machine, error) {
	if err := p.begin(ctx, MethodListMachines); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sortedLocked(), nil
}

func (p *Provider) sortedLocked() []providers.Machine {
	out := make([]providers.Machine, 0, len(p.machines))
	for _, m := range p.machines {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CreateMachines implements providers.Provider: CreateMachine's contract
// for each spec, in one call. On a programmed partial failure it returns the
// machines it made and the error.
func (p *Provider) CreateMachines(ctx context.Context, specs []providers.MachineSpec) ([]providers.Machine, error) {
	if err := p.begin(ctx, MethodCreateMachines); err != nil {
		return nil, err
	}
	p.mu.Lock()
	limit, failure := len(specs), error(nil)
	if len(p.batchFails) > 0 {
		f := p.batchFails[0]
		p.batchFails = p.batchFails[1:]
		limit, failure = min(f.made, len(specs)), f.err
	}
	p.mu.Unlock()
	out := make([]providers.Machine, 0, limit)
	for _, spec := range specs[:limit] {
		m, err := p.create(spec)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, failure
}

// Preflight implements providers.Provider: it checks nothing and fails only
// as programmed.
func (p *Provider) Preflight(ctx context.Context) error {
	return p.begin(ctx, MethodPreflight)
}

// StageImage implements providers.Provider: it keeps the image, read in
// full, under its name.
func (p *Provider) StageImage(ctx context.Context, img providers.StagedImage) error {
	if err := p.begin(ctx, MethodStageImage); err != nil {
		return err
	}
	op := "staging image " + img.Name
	if !p.Capabilities().StagesImages {
		return providers.NewError(providers.KindInvalid, op, errors.New("this provider does not stage images"))
	}
	data, err := io.ReadAll(img.Data)
	if err != nil {
		return providers.NewError(providers.KindTransient, op, err)
	}
	if int64(len(data)) != img.Size {
		return providers.NewError(providers.KindInvalid, op, fmt.Errorf("size %d does not match the %d bytes of data", img.Size, len(data)))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.staged[img.Name] = StagedImage{Workers: img.Workers, Data: data}
	return nil
}

// Staged returns the images staged so far, by name.
func (p *Provider) Staged() map[string]StagedImage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.staged)
}

// SetFile puts a file on a machine, for ReadFile to find.
func (p *Provider) SetFile(machine, path string, content []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.files[machine] == nil {
		p.files[machine] = map[string][]byte{}
	}
	p.files[machine][path] = content
}

// ReadFile implements providers.Provider: it returns what SetFile put on a
// machine that exists.
func (p *Provider) ReadFile(ctx context.Context, machine, path string) ([]byte, error) {
	if err := p.begin(ctx, MethodReadFile); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("reading %s from machine %s", path, machine)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.caps.ReadsFiles {
		return nil, providers.NewError(providers.KindInvalid, op, errors.New("this provider cannot read files off machines"))
	}
	if _, ok := p.machines[machine]; !ok {
		return nil, providers.NewError(providers.KindNotFound, op, errors.New("no such machine"))
	}
	b, ok := p.files[machine][path]
	if !ok {
		return nil, providers.NewError(providers.KindNotFound, op, errors.New("no such file"))
	}
	return bytes.Clone(b), nil
}

// LoadImage implements providers.Provider: it reads the archive and
// records its references as loaded on a running machine.
func (p *Provider) LoadImage(ctx context.Context, machine string, img providers.ImageArchive) error {
	if err := p.begin(ctx, MethodLoadImage); err != nil {
		return err
	}
	op := "loading images into machine " + machine
	if _, err := io.Copy(io.Discard, img.Data); err != nil {
		return providers.NewError(providers.KindTransient, op, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.machines[machine]
	if !ok {
		return providers.NewError(providers.KindNotFound, op, errors.New("no such machine"))
	}
	if m.Phase != providers.PhaseRunning {
		return providers.NewError(providers.KindInvalid, op, fmt.Errorf("machine is %s, not running", m.Phase))
	}
	p.loaded[machine] = append(p.loaded[machine], img.Refs...)
	return nil
}

// Loaded returns the references LoadImage loaded into machine, in order.
func (p *Provider) Loaded(machine string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.loaded[machine])
}

// MoveEndpoint implements providers.Provider. The fake's endpoint is a
// name, not an address, so there is nothing to move: it records the
// machine for Endpoint and checks that it exists.
func (p *Provider) MoveEndpoint(ctx context.Context, machine string) error {
	if err := p.begin(ctx, MethodMoveEndpoint); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.machines[machine]
	if !ok || m.Role != providers.RoleControlPlane {
		return providers.NewError(providers.KindNotFound, "moving the control-plane endpoint to machine "+machine, errors.New("no such control-plane machine"))
	}
	p.endpoint = machine
	return nil
}

// Endpoint is the machine MoveEndpoint last moved the endpoint to, or "".
func (p *Provider) Endpoint() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endpoint
}

// EnsureBackupStore implements providers.Provider: with the
// KeepsBackupStore capability (SetCapabilities), it reports a store that
// lives until DeleteBackupStore, outliving DestroyInfrastructure as real
// stores do.
func (p *Provider) EnsureBackupStore(ctx context.Context) (providers.BackupStore, error) {
	if err := p.begin(ctx, MethodEnsureBackupStore); err != nil {
		return providers.BackupStore{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.caps.KeepsBackupStore {
		return providers.BackupStore{}, providers.NewError(providers.KindInvalid, "ensuring the backup store",
			errors.New("this provider keeps no backup store"))
	}
	if p.store == nil {
		p.store = &providers.BackupStore{
			Endpoint: "http://fake-backups:7070", Bucket: "seed-backups", Region: "us-east-1",
			AccessKeyID: "fake", SecretAccessKey: "fake-secret",
		}
	}
	return *p.store, nil
}

// DeleteBackupStore implements providers.Provider.
func (p *Provider) DeleteBackupStore(ctx context.Context) error {
	if err := p.begin(ctx, MethodDeleteBackupStore); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.store = nil
	return nil
}

// SetMachineType makes MachineTypeResources report r for the type.
func (p *Provider) SetMachineType(machineType string, r providers.MachineResources) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.types[machineType] = r
}

// MachineTypeResources implements providers.Provider: the empty type is
// DefaultMachineResources, others are what SetMachineType said, and any
// other type is Invalid.
func (p *Provider) MachineTypeResources(ctx context.Context, machineType string) (providers.MachineResources, error) {
	if err := p.begin(ctx, MethodMachineTypeResources); err != nil {
		return providers.MachineResources{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.types[machineType]
	if !ok {
		return providers.MachineResources{}, providers.NewError(providers.KindInvalid, "sizing machine type "+machineType,
			fmt.Errorf("the fake provider has no machine type %q", machineType))
	}
	return r, nil
}
