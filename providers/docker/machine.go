package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/seedhq/seed/providers"
)

// Engine states a container moves through, as the engine names them.
const (
	stateCreated    = "created"
	stateRunning    = "running"
	stateRestarting = "restarting"
	statePaused     = "paused"
	stateExited     = "exited"
	stateRemoving   = "removing"
	stateDead       = "dead"
)

// Machine names become container names, hostnames and Node names: a DNS
// subdomain short enough to be a hostname.
var machineName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// maxParallelCreates bounds how many containers CreateMachines creates at
// once: each is a handful of engine calls, and the engine serialises much
// of its work anyway.
const maxParallelCreates = 8

// CreateMachines implements providers.Provider. The engine has no batch
// call, so it runs CreateMachine for each spec, several at a time, and
// returns the machines it made in spec order with every failure joined.
func (p *provider) CreateMachines(ctx context.Context, specs []providers.MachineSpec) ([]providers.Machine, error) {
	made := make([]*providers.Machine, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelCreates)
	for i := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m, err := p.CreateMachine(ctx, specs[i])
			if err != nil {
				errs[i] = err
				return
			}
			made[i] = &m
		}()
	}
	wg.Wait()
	out := make([]providers.Machine, 0, len(specs))
	for _, m := range made {
		if m != nil {
			out = append(out, *m)
		}
	}
	return out, errors.Join(errs...)
}

// CreateMachine implements providers.Provider. The container's name is the
// machine's: the engine refuses a second container of that name, which is
// what makes concurrent calls end with one machine.
func (p *provider) CreateMachine(ctx context.Context, spec providers.MachineSpec) (providers.Machine, error) {
	op := "creating machine " + spec.Name
	image, err := p.validate(spec)
	if err != nil {
		return providers.Machine{}, providers.NewError(providers.KindInvalid, op, err)
	}
	alloc, err := p.allocatable(ctx, spec.MachineType)
	if err != nil {
		return providers.Machine{}, fmt.Errorf("%s: %w", op, err)
	}
	archive, err := bootstrapArchive(spec.Bootstrap, p.providerID(spec.Name), alloc, p.now())
	if err != nil {
		return providers.Machine{}, providers.NewError(providers.KindInvalid, op, err)
	}

	unlock, err := p.locks.lock(ctx, spec.Name)
	if err != nil {
		return providers.Machine{}, fmt.Errorf("%s: %w", op, err)
	}
	defer unlock()

	existing, err := p.findContainer(ctx, spec.Name)
	if err != nil && !providers.IsNotFound(err) {
		return providers.Machine{}, fmt.Errorf("%s: %w", op, err)
	}
	found := err == nil
	pl := payload{archive: archive}
	if !found || existing.State == stateCreated {
		// Checked before anything is made: a machine that could not run
		// its pods is not worth creating.
		if pl.images, err = p.imagesToShip(ctx, op, image, spec.Images); err != nil {
			return providers.Machine{}, err
		}
	}
	if found {
		return p.adopt(ctx, op, existing, pl)
	}

	nw, err := p.clusterNetwork(ctx)
	if err != nil {
		return providers.Machine{}, fmt.Errorf("%s: %w", op, err)
	}
	params := nodeParams{
		Name:       spec.Name,
		Image:      image,
		Network:    p.network,
		Labels:     p.labels(spec),
		Privileged: p.privileged,
	}
	if spec.Role == providers.RoleControlPlane {
		socket := nw.Labels[LabelHostSocket]
		if socket == "" {
			socket = p.hostSocket
		}
		params.ControlPlane = &controlPlaneParams{BackendAlias: p.backendAlias, HostSocket: socket}
		// In a cluster whose first control plane publishes the endpoint
		// itself, a new one answers under the endpoint alias too, so that
		// Docker's DNS keeps giving in-network clients a live API server
		// once the old one goes and before the load balancer starts.
		holder, err := p.portHolder(ctx)
		if err != nil {
			return providers.Machine{}, fmt.Errorf("%s: %w", op, err)
		}
		if holder != "" {
			p.log.Info("Giving the new control plane the endpoint alias too: an older control plane still publishes the endpoint",
				"machine", spec.Name, "alias", p.alias, "publishedBy", holder)
			params.ControlPlane.EndpointAlias = p.alias
		}
		params.Labels[LabelEndpoint] = endpointLoadBalancer
	}

	p.log.Info("Creating machine", "machine", spec.Name, "role", spec.Role, "pool", spec.Pool, "image", image)
	id, err := p.engine.ContainerCreate(ctx, spec.Name, nodeContainer(params))
	switch {
	case isConflict(err):
		// Someone else is creating it since we looked: theirs is the machine.
		existing, err := p.awaitContainer(ctx, spec.Name)
		if err != nil {
			return providers.Machine{}, fmt.Errorf("%s: finding the container that took the name: %w", op, err)
		}
		return p.adopt(ctx, op, existing, pl)
	case providers.IsNotFound(err):
		// The image (or the network, removed since we looked) is missing:
		// retrying will not help until someone acts. The engine's message
		// says which.
		return providers.Machine{}, providers.NewError(providers.KindInvalid, op, err)
	case err != nil:
		return providers.Machine{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := p.bootstrapAndStart(ctx, id, pl); err != nil {
		return providers.Machine{}, fmt.Errorf("%s: %w", op, err)
	}
	return p.inspectMachine(ctx, op, id)
}

// payload is what a created container gets before it first starts.
type payload struct {
	archive []byte   // the bootstrap (bootstrapArchive)
	images  []string // images to ship (imagesToShip)
}

func (p *provider) validate(spec providers.MachineSpec) (image string, err error) {
	if len(spec.Name) > 63 || !machineName.MatchString(spec.Name) {
		return "", fmt.Errorf("machine name %q must be a lower-case DNS name of at most 63 characters", spec.Name)
	}
	if spec.Role != providers.RoleControlPlane && spec.Role != providers.RoleWorker {
		return "", fmt.Errorf("machine role %q is neither %q nor %q", spec.Role, providers.RoleControlPlane, providers.RoleWorker)
	}
	image = p.nodeImage
	if image == "" {
		if spec.KubernetesVersion == "" {
			return "", errors.New("no node image: set the provider's node image or the machine's Kubernetes version")
		}
		image = "seed-node:" + spec.KubernetesVersion
	}
	return image, nil
}

func (p *provider) labels(spec providers.MachineSpec) map[string]string {
	return map[string]string{
		providers.LabelCluster: p.cluster,
		providers.LabelPool:    spec.Pool,
		providers.LabelRole:    string(spec.Role),
		providers.LabelMachine: spec.Name,
		providers.LabelVersion: spec.KubernetesVersion,
		providers.LabelType:    spec.MachineType,
	}
}

// adopt returns a container found under the machine's name, if it is ours.
// One that was created but never started (its creator crashed, or is
// racing us) gets the bootstrap and is started.
func (p *provider) adopt(ctx context.Context, op string, c container, pl payload) (providers.Machine, error) {
	if err := p.owned(c); err != nil {
		return providers.Machine{}, providers.NewError(providers.KindInvalid, op, err)
	}
	if c.State == stateCreated {
		p.log.Info("Starting machine: it was created but never started", "machine", c.Name)
		if err := p.bootstrapAndStart(ctx, c.ID, pl); err != nil {
			return providers.Machine{}, fmt.Errorf("%s: %w", op, err)
		}
		return p.inspectMachine(ctx, op, c.ID)
	}
	return p.machine(c), nil
}

// owned says why c, found by a machine's name, is not one of our machines.
func (p *provider) owned(c container) error {
	switch owner, ok := c.Labels[providers.LabelCluster]; {
	case !ok:
		return fmt.Errorf("container %s (%s) exists and is not a Seed machine: remove or rename it", c.Name, shortID(c.ID))
	case owner != p.cluster:
		return fmt.Errorf("container %s (%s) is a machine of cluster %q, not %q", c.Name, shortID(c.ID), owner, p.cluster)
	case c.Labels[LabelComponent] != "":
		return fmt.Errorf("container %s (%s) is the %s of cluster %q, not a machine", c.Name, shortID(c.ID), c.Labels[LabelComponent], p.cluster)
	}
	return nil
}

// bootstrapAndStart copies the bootstrap and the images to ship into a
// created container and starts it. Every step is safe to repeat: the copies
// replace the same files and starting a running container is success.
func (p *provider) bootstrapAndStart(ctx context.Context, id string, pl payload) error {
	if err := p.engine.CopyToContainer(ctx, id, "/", bytes.NewReader(pl.archive)); err != nil {
		return fmt.Errorf("copying the bootstrap: %w", err)
	}
	if err := p.shipImages(ctx, id, pl.images); err != nil {
		return err
	}
	if err := p.engine.ContainerStart(ctx, id); err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	return nil
}

func (p *provider) inspectMachine(ctx context.Context, op, id string) (providers.Machine, error) {
	c, err := p.engine.ContainerInspect(ctx, id)
	if err != nil {
		return providers.Machine{}, fmt.Errorf("%s: %w", op, err)
	}
	return p.machine(c), nil
}

// findContainer finds the container named name. The engine also resolves ID
// prefixes, so a container whose ID merely starts with name is not it.
func (p *provider) findContainer(ctx context.Context, name string) (container, error) {
	c, err := p.engine.ContainerInspect(ctx, name)
	if err != nil {
		return container{}, err
	}
	if c.Name != name {
		return container{}, providers.NewError(providers.KindNotFound, "finding container "+name, errors.New("no container has that name"))
	}
	return c, nil
}

// awaitContainer finds the container that took name from us. The engine
// reserves a name before the container is registered, so for a moment (a
// volume being filled from the image, say) the name is taken and yet no
// container has it; if its creator then fails, it never will.
func (p *provider) awaitContainer(ctx context.Context, name string) (container, error) {
	delay := 50 * time.Millisecond
	deadline := p.now().Add(p.awaitTimeout)
	for {
		c, err := p.findContainer(ctx, name)
		if !providers.IsNotFound(err) {
			return c, err
		}
		if p.now().After(deadline) {
			return container{}, providers.NewError(providers.KindTransient, "finding container "+name,
				fmt.Errorf("the name is taken but no container has had it for %s", p.awaitTimeout))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return container{}, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
	}
}

// DeleteMachine implements providers.Provider. It removes the container with
// its /var volume, and returns once both are gone; a machine that does not
// exist is success.
func (p *provider) DeleteMachine(ctx context.Context, name string) error {
	op := "deleting machine " + name
	c, err := p.findContainer(ctx, name)
	if providers.IsNotFound(err) {
		return p.awaitVolumes(ctx, op, name)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := p.owned(c); err != nil {
		return providers.NewError(providers.KindInvalid, op, err)
	}
	p.log.Info("Deleting machine", "machine", name, "state", c.State)
	// By ID: the name may be taken again by the time the engine acts.
	err = p.engine.ContainerRemove(ctx, c.ID)
	if isConflict(err) && p.removingElsewhere(ctx, c.ID) {
		// Another caller's removal is under way (an agent killed while it
		// waited for it, say): the machine is gone only once that is done,
		// and callers act on its being gone.
		err = p.awaitRemoval(ctx, c.ID)
	}
	if err == nil || providers.IsNotFound(err) {
		err = p.awaitVolumes(ctx, op, name)
	}
	switch {
	case err == nil, providers.IsNotFound(err):
		if publishesPort(c) {
			// The port is free now: the load balancer takes the endpoint.
			return p.startLoadBalancerAfter(ctx, name)
		}
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// awaitVolumes returns once no volume of machine name is left. The engine
// forgets a container it removes before it has removed the container's
// /var volume, which holds the machine's containerd images and can take a
// second to delete: a caller that finds the container gone while another
// caller's removal runs (an agent killed mid-removal, then back) would
// otherwise go on while the machine's disk is still being freed. A volume
// no container holds any longer is removed here, so one the engine left
// behind goes too; one still held is waited for.
func (p *provider) awaitVolumes(ctx context.Context, op, name string) error {
	mine := filters{"label": {providers.LabelCluster + "=" + p.cluster, providers.LabelMachine + "=" + name}}
	delay := 50 * time.Millisecond
	for {
		vols, err := p.engine.VolumeList(ctx, mine)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if len(vols) == 0 {
			return nil
		}
		for _, v := range vols {
			if err := p.engine.VolumeRemove(ctx, v.Name); err != nil && !providers.IsNotFound(err) && !isConflict(err) {
				return fmt.Errorf("%s: removing its volume %s: %w", op, shortID(v.Name), err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for its volume to be removed: %w", op, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// awaitRemoval waits until container id no longer exists, while another
// caller's removal of it runs; if that removal stops short, it removes the
// container itself.
func (p *provider) awaitRemoval(ctx context.Context, id string) error {
	delay := 50 * time.Millisecond
	for {
		c, err := p.engine.ContainerInspect(ctx, id)
		switch {
		case providers.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case c.State != stateRemoving:
			if err := p.engine.ContainerRemove(ctx, id); err == nil || providers.IsNotFound(err) {
				return nil
			} else if !isConflict(err) {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another removal of container %s: %w", id, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// ListMachines implements providers.Provider. It asks only the engine, so it
// works whatever state the cluster is in.
func (p *provider) ListMachines(ctx context.Context) ([]providers.Machine, error) {
	cs, err := p.engine.ContainerList(ctx, labelFilter(providers.LabelCluster, p.cluster))
	if err != nil {
		return nil, fmt.Errorf("listing machines of cluster %s: %w", p.cluster, err)
	}
	machines := make([]providers.Machine, 0, len(cs))
	for _, c := range cs {
		if c.Labels[LabelComponent] != "" {
			continue // the load balancer
		}
		machines = append(machines, p.machine(c))
	}
	sort.Slice(machines, func(i, j int) bool { return machines[i].Name < machines[j].Name })
	return machines, nil
}

func (p *provider) machine(c container) providers.Machine {
	name := c.Name
	if name == "" {
		name = c.Labels[providers.LabelMachine]
	}
	return providers.Machine{
		Name:              name,
		Pool:              c.Labels[providers.LabelPool],
		Role:              providers.Role(c.Labels[providers.LabelRole]),
		MachineType:       c.Labels[providers.LabelType],
		KubernetesVersion: c.Labels[providers.LabelVersion],
		ProviderID:        p.providerID(name),
		Phase:             phase(c.State),
		CreatedAt:         c.Created,
		InternalIP:        c.IPs[p.network],
	}
}

func phase(state string) providers.Phase {
	switch state {
	case stateRunning:
		return providers.PhaseRunning
	case stateExited, statePaused:
		return providers.PhaseStopped
	case stateDead:
		return providers.PhaseFailed
	case stateRemoving:
		return providers.PhaseDeleting
	default:
		// created, restarting, and states newer engines may add: on its
		// way up, as far as we can tell. Failed would get it replaced.
		return providers.PhasePending
	}
}
