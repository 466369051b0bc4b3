package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/seedhq/seed/providers"
)

// Network labels, beyond the ownership ones, that hold the cluster's
// provider state: the seed CLI decides them once, on the host, and the agent
// reads them back from inside the cluster.
const (
	// LabelAPIServerPort is the 127.0.0.1 port on the Docker host that the
	// load balancer (in clusters made before it, the first control-plane
	// machine) maps to 6443.
	LabelAPIServerPort = "seed.dev/api-server-port"
	// LabelHostSocket is the engine's socket as a path on the Docker host,
	// mounted into the control-plane machine.
	LabelHostSocket = "seed.dev/docker-host-socket"
)

// Options configure the Docker provider.
type Options struct {
	// ClusterName is the cluster's name: a DNS label of at most 49
	// characters, so that "<name>-control-plane" is one too.
	ClusterName string
	// NodeImage is the image every machine runs. Empty means
	// "seed-node:<the machine's KubernetesVersion>".
	NodeImage string
	// Privileged runs machines with --privileged instead of the explicit
	// capability set, for hosts that allow it.
	Privileged bool
	// APIServerPort is the 127.0.0.1 port the API server is published on.
	// Zero picks a free one when the cluster's network is created; after
	// that, the port recorded on the network wins.
	APIServerPort int32
	// Socket is where this process reaches the engine: a path or a unix://
	// address. Default DefaultSocket.
	Socket string
	// HostSocket is the engine's socket as a path on the Docker host, which
	// can differ from Socket (inside the agent's pod, for instance). It is
	// recorded when the network is created and mounted into the
	// control-plane machine. Default DefaultSocket.
	HostSocket string
	// LBImage is the image the cluster's load-balancer container runs: one
	// whose entrypoint is the agent binary (`agent lb`), normally the agent
	// image the seed installs. Empty, EnsureInfrastructure cannot create the
	// load balancer, only start the one that exists: that is the agent's
	// copy of the provider, which never creates it.
	LBImage string
	// BackupDir is the backup store's directory on the Docker host: its
	// data, its IAM state and its keys. It must not be a cache, because
	// the backups in it are meant to outlive the cluster.
	BackupDir string
	// BackupImage is the image the backup store runs (versitygw). Without
	// BackupDir and BackupImage, EnsureBackupStore cannot create the store,
	// only start and attach the one that exists: that is the agent's copy
	// of the provider.
	BackupImage string
	// MachineTypes are the spec's machine types Preflight checks, keyed by
	// the field that sets them, as {"spec.nodePools[0].machineType":
	// "1x2Gi"}. Machines themselves get their type from
	// MachineSpec.MachineType.
	MachineTypes map[string]string
	// Logger receives one line per decision; the zero value discards.
	Logger logr.Logger
}

// provider is the Docker implementation of providers.Provider.
type provider struct {
	cluster      string
	network      string
	alias        string // the endpoint's name, which the load balancer carries
	backendAlias string // every control plane's name, which the load balancer resolves
	lbName       string
	lbImage      string
	// The backup store: its container, its own network, its directory on
	// the host and its image.
	backupName    string
	backupNetwork string
	backupDir     string
	backupImage   string
	nodeImage     string
	privileged    bool
	apiPort       int32
	hostSocket    string
	machineTypes  map[string]string
	host          host
	engine        engine
	log           logr.Logger
	locks         nameLocks
	pickFreePort  func() (int32, error)
	now           func() time.Time
	// awaitTimeout bounds how long CreateMachine waits for a container
	// whose name another caller has reserved.
	awaitTimeout time.Duration
}

var _ providers.Provider = (*provider)(nil)

// New returns a Docker provider for one cluster. It does not contact the
// engine; the first call does.
func New(opts Options) (providers.Provider, error) {
	socket := opts.Socket
	if socket == "" {
		socket = DefaultSocket
	}
	if rest, ok := strings.CutPrefix(socket, "unix://"); ok {
		socket = rest
	} else if strings.Contains(socket, "://") {
		return nil, providers.NewError(providers.KindInvalid, "configuring the Docker provider",
			fmt.Errorf("socket %q: only unix sockets are supported", opts.Socket))
	}
	return newProvider(opts, newClient(socket))
}

func newProvider(opts Options, e engine) (*provider, error) {
	const op = "configuring the Docker provider"
	if err := validateClusterName(opts.ClusterName); err != nil {
		return nil, providers.NewError(providers.KindInvalid, op, err)
	}
	if opts.APIServerPort < 0 || opts.APIServerPort > 65535 {
		return nil, providers.NewError(providers.KindInvalid, op, fmt.Errorf("API server port %d is out of range", opts.APIServerPort))
	}
	hostSocket := opts.HostSocket
	if hostSocket == "" {
		hostSocket = DefaultSocket
	}
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	return &provider{
		cluster:       opts.ClusterName,
		network:       "seed-" + opts.ClusterName,
		alias:         opts.ClusterName + "-control-plane",
		backendAlias:  opts.ClusterName + "-apiservers",
		lbName:        opts.ClusterName + "-lb",
		lbImage:       opts.LBImage,
		backupName:    opts.ClusterName + "-backups",
		backupNetwork: "seed-" + opts.ClusterName + "-backups",
		backupDir:     opts.BackupDir,
		backupImage:   opts.BackupImage,
		nodeImage:     opts.NodeImage,
		privileged:    opts.Privileged,
		apiPort:       opts.APIServerPort,
		hostSocket:    hostSocket,
		machineTypes:  opts.MachineTypes,
		engine:        e,
		log:           log.WithValues("provider", "docker", "cluster", opts.ClusterName),
		pickFreePort:  freeLoopbackPort,
		now:           time.Now,
		awaitTimeout:  30 * time.Second,
	}, nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func validateClusterName(name string) error {
	if len(name) > 49 || !dnsLabel.MatchString(name) {
		return fmt.Errorf("cluster name %q must be a DNS label (lower-case letters, digits, '-') of at most 49 characters", name)
	}
	return nil
}

// Name implements providers.Provider.
func (p *provider) Name() string { return "docker" }

// Capabilities implements providers.Provider. The node image holds every
// image the cluster runs, pod network included, and the images a machine
// asks for beyond those are exported from the host's engine; the agent
// drives the engine through the host's socket; files are copied out of
// containers.
func (p *provider) Capabilities() providers.Capabilities {
	return providers.Capabilities{
		PreloadedImages:  true,
		ShipsImages:      true,
		ReadsFiles:       true,
		KeepsBackupStore: true,
		Agent:            providers.AgentRequirements{HostDockerSocket: true},
	}
}

// StageImage implements providers.Provider: the Docker provider stages
// nothing, because its node image holds what machines run and the seed
// carries the agent image in the control plane's bootstrap.
func (p *provider) StageImage(_ context.Context, img providers.StagedImage) error {
	return providers.NewError(providers.KindInvalid, "staging image "+img.Name,
		errors.New("the Docker provider does not stage images: its node image carries them"))
}

// MoveEndpoint implements providers.Provider, and does nothing: the Docker
// provider's endpoint is a network alias and a host port, not an address
// one machine holds that a provider call could hand to another. A load
// balancer in front of the control planes, routing by their health checks,
// is how it changes hands, with no call from the agent.
func (p *provider) MoveEndpoint(context.Context, string) error { return nil }

// providerID is what the machine's Node carries in spec.providerID.
func (p *provider) providerID(machine string) string {
	return "seed://docker/" + p.cluster + "/" + machine
}

// EnsureInfrastructure implements providers.Provider: it makes sure the
// cluster's network exists, exactly once, and its load balancer, which owns
// the endpoints, and reports them.
func (p *provider) EnsureInfrastructure(ctx context.Context) (providers.Infrastructure, error) {
	nw, err := p.ensureNetwork(ctx)
	if err != nil {
		return providers.Infrastructure{}, err
	}
	port, err := p.recordedPort(nw)
	if err != nil {
		return providers.Infrastructure{}, err
	}
	if p.apiPort != 0 && p.apiPort != port {
		p.log.Info("Keeping the recorded API server port: it is mapped by the load balancer and cannot change in place",
			"network", nw.Name, "recorded", port, "asked", p.apiPort)
	}
	if err := p.ensureLoadBalancer(ctx, port); err != nil {
		return providers.Infrastructure{}, err
	}
	return providers.Infrastructure{
		ControlPlaneEndpoint: net.JoinHostPort(p.alias, "6443"),
		ExternalEndpoint:     net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))),
		CertSANs:             []string{p.alias, "localhost", "127.0.0.1"},
	}, nil
}

func (p *provider) recordedPort(nw network) (int32, error) {
	raw := nw.Labels[LabelAPIServerPort]
	port, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || port <= 0 || port > 65535 {
		return 0, providers.NewError(providers.KindInvalid, "reading network "+nw.Name,
			fmt.Errorf("label %s=%q is not a port", LabelAPIServerPort, raw))
	}
	return int32(port), nil
}

// ensureNetwork finds or creates the cluster's network. The engine's name
// check is best effort, so creators that race may each make one; every
// caller then keeps the same one (the oldest) and removes the others.
func (p *provider) ensureNetwork(ctx context.Context) (network, error) {
	op := "ensuring network " + p.network
	found, err := p.findNetworks(ctx)
	if err != nil {
		return network{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(found) == 0 {
		port := p.apiPort
		if port == 0 {
			if port, err = p.pickFreePort(); err != nil {
				return network{}, providers.NewError(providers.KindTransient, op, fmt.Errorf("picking a free port for the API server: %w", err))
			}
		}
		p.log.Info("Creating network", "network", p.network, "apiServerPort", port)
		_, err := p.engine.NetworkCreate(ctx, networkCreateRequest{
			Name:           p.network,
			CheckDuplicate: true,
			Driver:         "bridge",
			Labels: map[string]string{
				providers.LabelCluster: p.cluster,
				LabelAPIServerPort:     strconv.Itoa(int(port)),
				LabelHostSocket:        p.hostSocket,
			},
		})
		if err != nil && !isConflict(err) {
			return network{}, fmt.Errorf("%s: %w", op, err)
		}
		if found, err = p.findNetworks(ctx); err != nil {
			return network{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	return p.pickNetwork(ctx, found)
}

// findNetworks returns the networks named exactly like the cluster's.
func (p *provider) findNetworks(ctx context.Context) ([]network, error) {
	all, err := p.engine.NetworkList(ctx, filters{"name": {p.network}})
	if err != nil {
		return nil, err
	}
	var exact []network
	for _, n := range all {
		if n.Name == p.network {
			exact = append(exact, n)
		}
	}
	return exact, nil
}

// pickNetwork keeps the oldest of the cluster's networks and removes the
// others, which exist only when creators raced and nothing uses yet.
func (p *provider) pickNetwork(ctx context.Context, nws []network) (network, error) {
	op := "ensuring network " + p.network
	if len(nws) == 0 {
		return network{}, providers.NewError(providers.KindTransient, op, errors.New("the network was removed while being created"))
	}
	for _, n := range nws {
		if n.Labels[providers.LabelCluster] != p.cluster {
			return network{}, providers.NewError(providers.KindInvalid, op,
				fmt.Errorf("network %s (%s) exists but is not labelled %s=%s: remove or rename it", n.Name, shortID(n.ID), providers.LabelCluster, p.cluster))
		}
	}
	sort.Slice(nws, func(i, j int) bool {
		if !nws[i].Created.Equal(nws[j].Created) {
			return nws[i].Created.Before(nws[j].Created)
		}
		return nws[i].ID < nws[j].ID
	})
	for _, dup := range nws[1:] {
		p.log.Info("Removing duplicate network: concurrent creators each made one", "network", dup.Name, "id", shortID(dup.ID), "kept", shortID(nws[0].ID))
		if err := p.engine.NetworkRemove(ctx, dup.ID); providers.IgnoreNotFound(err) != nil {
			return network{}, fmt.Errorf("%s: removing duplicate: %w", op, err)
		}
	}
	return nws[0], nil
}

// clusterNetwork returns the cluster's network, which must exist.
func (p *provider) clusterNetwork(ctx context.Context) (network, error) {
	found, err := p.findNetworks(ctx)
	if err != nil {
		return network{}, err
	}
	if len(found) == 0 {
		return network{}, providers.NewError(providers.KindInvalid, "finding network "+p.network,
			errors.New("the cluster's network does not exist: EnsureInfrastructure must run first"))
	}
	return p.pickNetwork(ctx, found)
}

// DestroyInfrastructure implements providers.Provider: it removes every
// container, volume and network labelled with the cluster, and reports each
// one it could not remove.
func (p *provider) DestroyInfrastructure(ctx context.Context) error {
	owned := labelFilter(providers.LabelCluster, p.cluster)
	var errs []error

	// The control plane goes first: the agent runs there, and a live agent
	// would replace the workers being removed. Then sweep until no machine
	// is left, in case one was being created as the agent went. A removal
	// the agent had asked for just before it went carries on in the engine:
	// that machine is waited for, not reported (its volume and network
	// cannot go before it does).
	waitUntil := time.Now().Add(2 * time.Minute)
	for pass := 0; ; {
		containers, err := p.engine.ContainerList(ctx, owned)
		if err != nil {
			return fmt.Errorf("destroying cluster %s: %w", p.cluster, err)
		}
		if len(containers) == 0 {
			break
		}
		if pass == 5 {
			for _, c := range containers {
				errs = append(errs, fmt.Errorf("machine %s keeps coming back", c.Name))
			}
			break
		}
		// Control planes, then workers, then the load balancer, which the
		// machines' kubelets talk through until they go.
		rank := func(c container) int {
			switch {
			case c.Labels[LabelComponent] != "":
				return 2
			case c.Labels[providers.LabelRole] == string(providers.RoleControlPlane):
				return 0
			}
			return 1
		}
		sort.SliceStable(containers, func(i, j int) bool { return rank(containers[i]) < rank(containers[j]) })
		failed, elsewhere := false, false
		for _, c := range containers {
			if c.State == stateRemoving {
				elsewhere = true
				continue
			}
			if c.Labels[LabelComponent] != "" {
				p.log.Info("Removing the "+c.Labels[LabelComponent]+": destroying the cluster", "container", c.Name)
			} else {
				p.log.Info("Removing machine: destroying the cluster", "machine", c.Name)
			}
			err := p.engine.ContainerRemove(ctx, c.ID)
			switch {
			case err == nil, providers.IsNotFound(err):
			case isConflict(err) && p.removingElsewhere(ctx, c.ID):
				elsewhere = true
			default:
				errs = append(errs, fmt.Errorf("machine %s: %w", c.Name, err))
				failed = true
			}
		}
		if failed {
			break
		}
		if !elsewhere {
			pass++
			continue
		}
		if time.Now().After(waitUntil) {
			errs = append(errs, fmt.Errorf("a machine of cluster %s is still being removed by the engine after 2m", p.cluster))
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("destroying cluster %s: %w", p.cluster, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}

	if vols, err := p.engine.VolumeList(ctx, owned); err != nil {
		errs = append(errs, err)
	} else {
		for _, v := range vols {
			p.log.Info("Removing volume: destroying the cluster", "volume", shortID(v.Name))
			if err := p.engine.VolumeRemove(ctx, v.Name); providers.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", shortID(v.Name), err))
			}
		}
	}

	if err := p.detachBackupStore(ctx); err != nil {
		errs = append(errs, fmt.Errorf("backup store %s: %w", p.backupName, err))
	}
	if nws, err := p.engine.NetworkList(ctx, owned); err != nil {
		errs = append(errs, err)
	} else {
		for _, n := range nws {
			p.log.Info("Removing network: destroying the cluster", "network", n.Name)
			if err := p.engine.NetworkRemove(ctx, n.ID); providers.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("network %s: %w", n.Name, err))
			}
		}
	}

	if len(errs) > 0 {
		return fmt.Errorf("destroying cluster %s: %d resources left: %w", p.cluster, len(errs), errors.Join(errs...))
	}
	return nil
}

// removingElsewhere reports whether the engine is already removing the
// container for another caller (or has finished): a removal that conflicts
// with one under way.
func (p *provider) removingElsewhere(ctx context.Context, id string) bool {
	c, err := p.engine.ContainerInspect(ctx, id)
	return providers.IsNotFound(err) || (err == nil && c.State == stateRemoving)
}

// freeLoopbackPort asks the kernel for a port free on 127.0.0.1 now. Another
// process may take it before the control plane maps it; the engine then
// fails the start, saying so.
func freeLoopbackPort() (int32, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port), nil
}

// nameLocks serialises calls about the same machine within this process,
// so that two overlapping CreateMachine calls do not both copy the bootstrap
// into the container. Across processes the engine's unique names decide.
type nameLocks struct {
	mu   sync.Mutex
	held map[string]*nameLock
}

type nameLock struct {
	ch   chan struct{}
	refs int
}

func (l *nameLocks) lock(ctx context.Context, name string) (unlock func(), err error) {
	l.mu.Lock()
	if l.held == nil {
		l.held = map[string]*nameLock{}
	}
	nl := l.held[name]
	if nl == nil {
		nl = &nameLock{ch: make(chan struct{}, 1)}
		l.held[name] = nl
	}
	nl.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		nl.refs--
		if nl.refs == 0 {
			delete(l.held, name)
		}
		l.mu.Unlock()
	}
	select {
	case nl.ch <- struct{}{}:
		return func() { <-nl.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
