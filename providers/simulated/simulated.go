package simulated

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/providers"
)

// Labels, annotations and taints of a simulated machine's Node, beyond
// Seed's ownership labels.
const (
	// KwokNodeKey marks a Node as kwok's: as an annotation it is what kwok
	// selects the Nodes it manages by (manageNodesWithAnnotationSelector),
	// as a label it lets pods and tests select simulated Nodes.
	KwokNodeKey = "kwok.x-k8s.io/node"
	// KwokNodeValue is KwokNodeKey's value.
	KwokNodeValue = "fake"
	// AnnotationRegisterAt is when the machine registers (RFC 3339): the
	// creation time plus the registration delay. kwok's node-initialize
	// stage waits for it (its delay's durationFrom) before it makes the
	// Node Ready.
	AnnotationRegisterAt = "seed.dev/simulated-register-at"
	// ProviderIDPrefix starts every simulated machine's spec.providerID.
	ProviderIDPrefix = "kwok://"
	// podsPerMachine is a kubelet's default maxPods.
	podsPerMachine = 110
)

// Options configure the provider.
type Options struct {
	ClusterName string
	// Config reaches the API server the machines are Nodes of.
	Config *rest.Config
	// RegistrationDelay is how long a new machine waits before kwok takes
	// its Node over, standing in for boot time.
	RegistrationDelay time.Duration
	Clock             clock.PassiveClock
}

// provider reaches Nodes through the dynamic and metadata clients, not
// client-go's typed clientset: the seed links this package (through the
// registry), and the clientset and k8s.io/api would make it big (see
// hack/verify-method-elimination.sh).
type provider struct {
	opts  Options
	nodes dynamic.NamespaceableResourceInterface
	meta  metadata.Getter
}

var nodesResource = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}

var _ providers.Provider = (*provider)(nil)

// New returns a simulated provider creating Nodes through opts.Config.
func New(opts Options) (providers.Provider, error) {
	if opts.ClusterName == "" {
		return nil, providers.NewError(providers.KindInvalid, "setting up the simulated provider", errors.New("the cluster name is empty"))
	}
	if opts.Config == nil {
		return nil, providers.NewError(providers.KindInvalid, "setting up the simulated provider",
			errors.New("it needs the API server its machines register with, which only the agent has: "+
				"run the agent against that API server (as pkg/scaleenv does); seed up cannot create a simulated cluster"))
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("building the simulated provider's client: %w", err)
	}
	meta, err := metadata.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("building the simulated provider's metadata client: %w", err)
	}
	return &provider{opts: opts, nodes: dyn.Resource(nodesResource), meta: meta.Resource(nodesResource)}, nil
}

func (p *provider) Name() string { return "simulated" }

// Capabilities: nothing to ship or read; a simulated machine runs no
// images at all, so it counts as preloaded (the join then pulls nothing).
func (p *provider) Capabilities() providers.Capabilities {
	return providers.Capabilities{PreloadedImages: true}
}

func (p *provider) Preflight(context.Context) error { return nil }

// EnsureInfrastructure reports the API server itself as the endpoint:
// there is nothing else.
func (p *provider) EnsureInfrastructure(context.Context) (providers.Infrastructure, error) {
	u, err := url.Parse(p.opts.Config.Host)
	if err != nil || u.Host == "" {
		return providers.Infrastructure{}, providers.NewError(providers.KindInvalid, "reading the API server endpoint",
			fmt.Errorf("unusable host %q", p.opts.Config.Host))
	}
	return providers.Infrastructure{ControlPlaneEndpoint: u.Host, ExternalEndpoint: u.Host}, nil
}

// DestroyInfrastructure deletes every machine of the cluster.
func (p *provider) DestroyInfrastructure(ctx context.Context) error {
	err := p.nodes.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: p.selector()})
	if err != nil {
		return classify("deleting the simulated machines", err)
	}
	return nil
}

func (p *provider) StageImage(context.Context, providers.StagedImage) error {
	return providers.NewError(providers.KindInvalid, "staging an image", errors.New("simulated machines run no images"))
}

func (p *provider) ReadFile(context.Context, string, string) ([]byte, error) {
	return nil, providers.NewError(providers.KindInvalid, "reading a file", errors.New("simulated machines have no files"))
}

func (p *provider) LoadImage(context.Context, string, providers.ImageArchive) error {
	return providers.NewError(providers.KindInvalid, "loading an image", errors.New("simulated machines run no images"))
}

// EnsureBackupStore fails: a simulated cluster keeps no backup store (its
// Capabilities say so), and backups need one the spec names.
func (p *provider) EnsureBackupStore(context.Context) (providers.BackupStore, error) {
	return providers.BackupStore{}, providers.NewError(providers.KindInvalid, "ensuring the backup store",
		errors.New("the simulated provider keeps no backup store: name one in spec.backup.store"))
}

// DeleteBackupStore has nothing to delete.
func (p *provider) DeleteBackupStore(context.Context) error { return nil }

// MoveEndpoint has nothing to move: the endpoint is the API server.
func (p *provider) MoveEndpoint(context.Context, string) error { return nil }

// createParallelism is how many Node creations are in flight at once: a
// cloud takes a batch in one call, and one at a time a thousand would
// take a thousand round trips.
const createParallelism = 16

// CreateMachines creates the machines createParallelism at a time and
// returns those made, in spec order.
func (p *provider) CreateMachines(ctx context.Context, specs []providers.MachineSpec) ([]providers.Machine, error) {
	results := make([]providers.Machine, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, createParallelism)
	for i := range specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i], errs[i] = p.CreateMachine(ctx, specs[i])
		}()
	}
	wg.Wait()
	made := make([]providers.Machine, 0, len(specs))
	for i := range specs {
		if errs[i] == nil {
			made = append(made, results[i])
		}
	}
	return made, errors.Join(errs...)
}

// CreateMachine creates the machine's Node: one request. The join's
// registration (labels, taints) comes from its bootstrap, read as a kubelet
// would; a control plane created by hand (the harness's) may have none.
func (p *provider) CreateMachine(ctx context.Context, spec providers.MachineSpec) (providers.Machine, error) {
	op := "creating machine " + spec.Name
	node, err := p.node(spec)
	if err != nil {
		return providers.Machine{}, providers.NewError(providers.KindInvalid, op, err)
	}
	created, err := p.nodes.Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Asked twice, or by two agents: one machine, the first.
		existing, gerr := p.meta.Get(ctx, spec.Name, metav1.GetOptions{})
		if gerr != nil {
			return providers.Machine{}, classify(op, gerr)
		}
		if existing.Labels[providers.LabelCluster] != p.opts.ClusterName {
			return providers.Machine{}, providers.NewError(providers.KindInvalid, op,
				fmt.Errorf("a Node %s exists that is no machine of cluster %s", spec.Name, p.opts.ClusterName))
		}
		return p.machine(existing.ObjectMeta), nil
	}
	if err != nil {
		return providers.Machine{}, classify(op, err)
	}
	return p.machine(metav1.ObjectMeta{Name: created.GetName(), Labels: created.GetLabels(), Annotations: created.GetAnnotations(),
		CreationTimestamp: created.GetCreationTimestamp()}), nil
}

// machineType resolves a machine type, the empty one being the default,
// to its name and what its Node has.
func machineType(name string) (resolved string, cpus, memGiB int, err error) {
	if name == "" {
		name = v1alpha1.DefaultSimulatedMachineType
	}
	cpus, memGiB, ok := v1alpha1.SimulatedMachineType(name)
	if !ok {
		return "", 0, 0, fmt.Errorf("unknown simulated machine type %q", name)
	}
	return name, cpus, memGiB, nil
}

// MachineTypeResources implements providers.Provider: a simulated Node's
// allocatable is its capacity, all of it, as node() registers it.
func (p *provider) MachineTypeResources(_ context.Context, name string) (providers.MachineResources, error) {
	_, cpus, memGiB, err := machineType(name)
	if err != nil {
		return providers.MachineResources{}, providers.NewError(providers.KindInvalid, "sizing machine type "+name, err)
	}
	return providers.MachineResources{MilliCPU: int64(cpus) * 1000, Memory: int64(memGiB) << 30, Pods: podsPerMachine}, nil
}

func (p *provider) node(spec providers.MachineSpec) (*unstructured.Unstructured, error) {
	mt, cpus, memGiB, err := machineType(spec.MachineType)
	if err != nil {
		return nil, err
	}
	var reg bootstrap.Registration
	if len(spec.Bootstrap.Files) > 0 {
		var err error
		if reg, err = bootstrap.ReadRegistration(spec.Bootstrap); err != nil {
			return nil, fmt.Errorf("reading the machine's join: %w", err)
		}
		if reg.Name != spec.Name {
			return nil, fmt.Errorf("the join registers Node %q, not %q", reg.Name, spec.Name)
		}
	}
	lbls := map[string]any{}
	for k, v := range reg.Labels {
		lbls[k] = v
	}
	for k, v := range map[string]string{
		providers.LabelCluster:             p.opts.ClusterName,
		providers.LabelPool:                spec.Pool,
		providers.LabelRole:                string(spec.Role),
		providers.LabelMachine:             spec.Name,
		providers.LabelType:                mt,
		providers.LabelVersion:             spec.KubernetesVersion,
		"kubernetes.io/hostname":           spec.Name,
		"node.kubernetes.io/instance-type": mt,
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		KwokNodeKey:                        KwokNodeValue,
		"type":                             "kwok",
		"node.kubernetes.io/exclude-from-external-load-balancers": "",
	} {
		lbls[k] = v
	}
	if spec.Role != providers.RoleControlPlane {
		delete(lbls, "node.kubernetes.io/exclude-from-external-load-balancers")
	} else {
		// As kubeadm labels a control plane, which the agent looks for.
		lbls["node-role.kubernetes.io/control-plane"] = ""
	}
	at := p.opts.Clock.Now().Add(p.opts.RegistrationDelay)
	capacity := map[string]any{
		"cpu":    strconv.Itoa(cpus),
		"memory": strconv.Itoa(memGiB) + "Gi",
		"pods":   strconv.Itoa(podsPerMachine),
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata": map[string]any{
			"name":        spec.Name,
			"labels":      lbls,
			"annotations": map[string]any{AnnotationRegisterAt: at.UTC().Format(time.RFC3339Nano), KwokNodeKey: KwokNodeValue},
		},
		"spec": map[string]any{"providerID": ProviderIDPrefix + spec.Name, "taints": joinTaints(reg)},
		// The API server keeps a Node's status on create, and kwok keeps
		// the capacity and kubelet version it finds.
		"status": map[string]any{
			"capacity":    capacity,
			"allocatable": capacity,
			"nodeInfo":    map[string]any{"kubeletVersion": spec.KubernetesVersion, "operatingSystem": "linux", "architecture": "amd64"},
		},
	}}, nil
}

func joinTaints(reg bootstrap.Registration) []any {
	taints := []any{}
	for _, t := range reg.Taints {
		taint := map[string]any{"key": t.Key, "effect": t.Effect}
		if t.Value != "" {
			taint["value"] = t.Value
		}
		taints = append(taints, taint)
	}
	return taints
}

// DeleteMachine deletes the machine's Node; kwok and the pod garbage
// collector take its pods.
func (p *provider) DeleteMachine(ctx context.Context, name string) error {
	err := p.nodes.Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return classify("deleting machine "+name, err)
	}
	return nil
}

// ListMachines lists the cluster's Nodes by their ownership label, reading
// metadata alone: a Node's status is most of its size.
func (p *provider) ListMachines(ctx context.Context) ([]providers.Machine, error) {
	list, err := p.meta.List(ctx, metav1.ListOptions{LabelSelector: p.selector()})
	if err != nil {
		return nil, classify("listing the simulated machines", err)
	}
	machines := make([]providers.Machine, 0, len(list.Items))
	for i := range list.Items {
		machines = append(machines, p.machine(list.Items[i].ObjectMeta))
	}
	return machines, nil
}

func (p *provider) selector() string {
	return labels.SelectorFromSet(labels.Set{providers.LabelCluster: p.opts.ClusterName}).String()
}

// machine reads a machine back from its Node's metadata: everything the
// provider knows about it is there. It is Pending until it registers.
func (p *provider) machine(meta metav1.ObjectMeta) providers.Machine {
	m := providers.Machine{
		Name:              meta.Name,
		Pool:              meta.Labels[providers.LabelPool],
		Role:              providers.Role(meta.Labels[providers.LabelRole]),
		MachineType:       meta.Labels[providers.LabelType],
		KubernetesVersion: meta.Labels[providers.LabelVersion],
		ProviderID:        ProviderIDPrefix + meta.Name,
		CreatedAt:         meta.CreationTimestamp.Time,
		Phase:             providers.PhaseRunning,
	}
	switch {
	case meta.DeletionTimestamp != nil:
		m.Phase = providers.PhaseDeleting
	case p.opts.Clock.Now().Before(registerAt(meta)):
		m.Phase = providers.PhasePending
	}
	return m
}

func registerAt(meta metav1.ObjectMeta) time.Time {
	at, err := time.Parse(time.RFC3339Nano, meta.Annotations[AnnotationRegisterAt])
	if err != nil {
		return meta.CreationTimestamp.Time
	}
	return at
}

// classify turns an API error into a provider error kind.
func classify(op string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return providers.NewError(providers.KindNotFound, op, err)
	case apierrors.IsTooManyRequests(err):
		e := &providers.Error{Kind: providers.KindThrottled, Op: op, Err: err}
		if s, ok := apierrors.SuggestsClientDelay(err); ok {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err):
		return providers.NewError(providers.KindInvalid, op, err)
	}
	// An unknown error is worth retrying.
	return providers.NewError(providers.KindTransient, op, err)
}
