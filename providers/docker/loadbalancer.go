package docker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/seedhq/seed/providers"
)

// Labels that tell the cluster's containers apart beyond the ownership ones.
const (
	// LabelComponent marks a container of the cluster that is not a
	// machine: ListMachines leaves it out.
	LabelComponent = "seed.dev/component"
	// LabelEndpoint on a control-plane machine says how its API server is
	// reached from outside: "load-balancer" when it carries only the
	// backend alias and the load balancer owns the endpoint. A control
	// plane without it was created before the load balancer existed: it
	// publishes the API server port and carries the endpoint alias itself.
	LabelEndpoint = "seed.dev/endpoint"
)

const (
	componentLoadBalancer = "load-balancer"
	endpointLoadBalancer  = "load-balancer"
)

// loadBalancer is the container that owns the cluster's API server
// endpoint: the endpoint alias on the cluster network and the 127.0.0.1
// port. It runs `agent lb`, which forwards to every ready control plane it
// finds under the backend alias.
func (p *provider) loadBalancer(port int32) containerCreateRequest {
	return containerCreateRequest{
		Image: p.lbImage,
		// The image's entrypoint is the agent binary.
		Cmd: []string{"lb", "--listen", ":6443", "--backends", p.backendAlias + ":6443"},
		Labels: map[string]string{
			providers.LabelCluster: p.cluster,
			LabelComponent:         componentLoadBalancer,
		},
		ExposedPorts: map[string]struct{}{apiServerContainerPort: {}},
		HostConfig: hostConfig{
			NetworkMode: p.network,
			PortBindings: map[string][]portBinding{
				apiServerContainerPort: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(int(port))}},
			},
			// Up again after a host restart, like the machines. MaskedPaths
			// and ReadonlyPaths go as null: the engine's defaults.
			RestartPolicy: &restartPolicy{Name: "unless-stopped"},
		},
		NetworkingConfig: networkingConfig{
			EndpointsConfig: map[string]endpointConfig{p.network: {Aliases: []string{p.alias}}},
		},
	}
}

// ensureLoadBalancer creates the load-balancer container if it is missing
// and starts it unless a control-plane machine of an older cluster still
// publishes the port, in which case DeleteMachine starts it when that
// machine goes. Racing callers end with one container: the engine's unique
// names decide, and starting a running container is success.
func (p *provider) ensureLoadBalancer(ctx context.Context, port int32) error {
	op := "ensuring load balancer " + p.lbName
	lb, err := p.findContainer(ctx, p.lbName)
	switch {
	case providers.IsNotFound(err):
		if p.lbImage == "" {
			// The agent's copy of the provider: it only ever starts the
			// container the seed made.
			p.log.Info("Not creating the load balancer: this provider was given no image for it", "container", p.lbName)
			return nil
		}
		p.log.Info("Creating load balancer", "container", p.lbName, "image", p.lbImage, "apiServerPort", port)
		_, err = p.engine.ContainerCreate(ctx, p.lbName, p.loadBalancer(port))
		switch {
		case isConflict(err):
			// Another caller made it since we looked.
		case providers.IsNotFound(err):
			return providers.NewError(providers.KindInvalid, op,
				fmt.Errorf("%w (the load balancer runs from the agent image: build it with hack/build-agent-image.sh)", err))
		case err != nil:
			return fmt.Errorf("%s: %w", op, err)
		}
		if lb, err = p.awaitContainer(ctx, p.lbName); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := p.ownedLoadBalancer(lb); err != nil {
		return providers.NewError(providers.KindInvalid, op, err)
	}
	return p.startLoadBalancer(ctx, lb)
}

// ownedLoadBalancer says why c, found by the load balancer's name, is not
// the cluster's load balancer.
func (p *provider) ownedLoadBalancer(c container) error {
	switch owner, ok := c.Labels[providers.LabelCluster]; {
	case !ok:
		return fmt.Errorf("container %s (%s) exists and is not Seed's: remove or rename it", c.Name, shortID(c.ID))
	case owner != p.cluster:
		return fmt.Errorf("container %s (%s) belongs to cluster %q, not %q", c.Name, shortID(c.ID), owner, p.cluster)
	case c.Labels[LabelComponent] != componentLoadBalancer:
		return fmt.Errorf("container %s (%s) belongs to cluster %s but is not its load balancer: remove it", c.Name, shortID(c.ID), p.cluster)
	}
	return nil
}

// startLoadBalancer starts lb unless it runs already or an older control
// plane still holds the port.
func (p *provider) startLoadBalancer(ctx context.Context, lb container) error {
	op := "starting load balancer " + p.lbName
	if lb.State == stateRunning || lb.State == stateRestarting {
		return nil
	}
	holder, err := p.portHolder(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if holder != "" {
		p.log.Info("Leaving the load balancer stopped: an older control-plane machine publishes the API server port; it starts when that machine is deleted",
			"container", p.lbName, "machine", holder)
		return nil
	}
	p.log.Info("Starting load balancer", "container", p.lbName, "state", lb.State)
	// The engine frees a removed container's port as the removal returns,
	// but a moment's overlap with a removal elsewhere is cheap to wait out.
	var last error
	for range 10 {
		if last = p.engine.ContainerStart(ctx, lb.ID); last == nil {
			return nil
		}
		if providers.IsNotFound(last) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", op, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %w", op, last)
}

// portHolder names a control-plane machine that publishes the API server
// port itself (one created before the load balancer), or "".
func (p *provider) portHolder(ctx context.Context) (string, error) {
	cs, err := p.engine.ContainerList(ctx, labelFilter(providers.LabelCluster, p.cluster))
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if publishesPort(c) && c.State != stateRemoving {
			return c.Name, nil
		}
	}
	return "", nil
}

// publishesPort: c is a control-plane machine from before the load
// balancer, holding the API server port and the endpoint alias.
func publishesPort(c container) bool {
	return c.Labels[providers.LabelRole] == string(providers.RoleControlPlane) &&
		c.Labels[LabelComponent] == "" && c.Labels[LabelEndpoint] != endpointLoadBalancer
}

// startLoadBalancerAfter starts the load balancer once no machine
// publishes the port: DeleteMachine calls it after removing a control
// plane, so the external endpoint is back within a second. Without a load
// balancer (EnsureInfrastructure has not run since the upgrade) there is
// nothing to do.
func (p *provider) startLoadBalancerAfter(ctx context.Context, removed string) error {
	lb, err := p.findContainer(ctx, p.lbName)
	if providers.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("starting load balancer %s: %w", p.lbName, err)
	}
	if err := p.ownedLoadBalancer(lb); err != nil {
		return providers.NewError(providers.KindInvalid, "starting load balancer "+p.lbName, err)
	}
	if lb.State == stateRunning || lb.State == stateRestarting {
		return nil
	}
	p.log.Info("Handing the API server endpoint to the load balancer: the machine that published it is gone", "machine", removed)
	return p.startLoadBalancer(ctx, lb)
}
