package providers

import (
	"context"
	"io"
	"time"
)

// Role is what a machine does in the cluster.
type Role string

const (
	RoleControlPlane Role = "control-plane"
	RoleWorker       Role = "worker"
)

// Phase is the provider's view of a machine's lifecycle. Whether the machine
// is a healthy Node is the cluster's view and is observed separately.
type Phase string

const (
	// PhasePending: asked for, not running yet (EC2 pending, container created).
	PhasePending Phase = "Pending"
	// PhaseRunning: the machine is up; it may or may not have joined.
	PhaseRunning Phase = "Running"
	// PhaseStopped: the machine exists but is not running.
	PhaseStopped Phase = "Stopped"
	// PhaseDeleting: deletion was asked for and is under way.
	PhaseDeleting Phase = "Deleting"
	// PhaseFailed: the provider reports the machine as broken for good.
	PhaseFailed Phase = "Failed"
)

// File is a file the machine must have before its bootstrap script runs.
type File struct {
	Path    string
	Mode    uint32
	Content []byte
}

// Bootstrap is what a machine runs once on first boot: files, then a script.
// The Docker provider copies it into the container, where a boot unit runs
// it; the AWS provider sends it as user data. Both run it exactly once.
type Bootstrap struct {
	Files  []File
	Script string
}

// MachineSpec asks for one machine. Name is the identity: it is unique in the
// cluster, it becomes the Node name, and asking twice for the same name
// yields one machine.
type MachineSpec struct {
	Name              string
	Pool              string
	Role              Role
	MachineType       string
	KubernetesVersion string
	Bootstrap         Bootstrap
	// Images are image references the machine needs and its boot image may
	// lack: during an upgrade, the cluster's current kube-proxy and CoreDNS,
	// the agent, the pod network. A provider whose Capabilities say
	// ShipsImages makes each available on the machine before it joins;
	// others ignore it, and their machines pull what they run.
	Images []string
}

// Machine is a machine as the provider sees it.
type Machine struct {
	Name              string
	Pool              string
	Role              Role
	MachineType       string
	KubernetesVersion string
	// ProviderID is the value the machine's Node carries in spec.providerID.
	ProviderID string
	Phase      Phase
	CreatedAt  time.Time
	// InternalIP is the address other machines reach it on, when known.
	InternalIP string
}

// Infrastructure is what the cluster-wide resources give the machines.
type Infrastructure struct {
	// ControlPlaneEndpoint (host:port) is how machines and in-cluster clients
	// reach the API server. It stays the same for the life of the cluster,
	// even when the control-plane machine is replaced.
	ControlPlaneEndpoint string
	// ExternalEndpoint (host:port) is how the seed, outside, reaches it.
	ExternalEndpoint string
	// CertSANs are extra names the API server certificate must carry.
	CertSANs []string
}

// Capabilities are the facts about a provider that generic code acts on,
// declared by the provider so that nothing outside providers/ branches on
// which provider it has. A capability is a field here, never an optional
// interface found by type assertion, so that a decorator cannot hide it.
// Each field's zero value is the conservative choice: pull images, stage
// nothing, read nothing, mount nothing.
type Capabilities struct {
	// PreloadedImages: machines boot from an image that holds every image
	// Kubernetes and the pod network run, so kubeadm pulls none and the
	// seed ships no pod network image. Without it kubeadm pulls Kubernetes'
	// images, and the seed stages the pod network (StagesImages).
	PreloadedImages bool
	// StagesImages: StageImage ships images to the machines. Without it,
	// StageImage fails and the seed carries the agent image in the control
	// plane's bootstrap files instead.
	StagesImages bool
	// ShipsImages: CreateMachine puts every MachineSpec.Images its boot
	// image lacks on the machine before the bootstrap script runs, taken
	// from where the provider keeps images (Docker: the host's engine), so
	// machines need no registry. Without it, Images is ignored and the
	// machines pull them.
	ShipsImages bool
	// ReadsFiles: ReadFile reads a file off a machine, which lets the seed
	// fetch the admin kubeconfig of a cluster it holds no context for.
	// Without it, ReadFile fails.
	ReadsFiles bool
	// KeepsBackupStore: EnsureBackupStore runs an S3-compatible store for
	// the cluster's backups, which outlives the cluster. Without it,
	// EnsureBackupStore fails and backups need a store the spec names.
	KeepsBackupStore bool
	// Agent is how the in-cluster agent must run to drive this provider.
	Agent AgentRequirements
}

// AgentRequirements say how the agent's Deployment must differ for a
// provider.
type AgentRequirements struct {
	// Image, when set, is a registry image the machines pull the agent
	// from, in place of the image the seed ships.
	Image string
	// HostDockerSocket: the agent reaches the provider through the host's
	// Docker socket, which its pod must mount.
	HostDockerSocket bool
	// CredentialsSecret, when set, names a Secret in the agent's namespace
	// whose keys become the agent's environment (provider credentials).
	CredentialsSecret string
}

// Provider creates and removes a cluster's machines. Every method is safe to
// call again after a failure or a crash, and safe when two callers overlap.
type Provider interface {
	// Name is the provider's registered name ("docker", "aws", "simulated", "fake").
	Name() string
	// Capabilities declares what this provider's machines and agent differ
	// by. It is fixed for the provider's life and calls nothing remote.
	Capabilities() Capabilities
	// Preflight checks, before anything is created, that the spec can work
	// (region, machine types, images), naming the spec field at fault. A
	// provider with nothing to check returns nil.
	Preflight(ctx context.Context) error
	// EnsureInfrastructure creates, or finds, the cluster-wide resources
	// (networks, security groups, endpoint) and reports them.
	EnsureInfrastructure(ctx context.Context) (Infrastructure, error)
	// DestroyInfrastructure removes everything the cluster owns, machines
	// included, found by ownership labels or tags. Nothing found is success.
	DestroyInfrastructure(ctx context.Context) error
	// StageImage ships an image to machines without a registry: it stores
	// it where the first boot of the machines it applies to fetches and
	// imports it into containerd, before the bootstrap script runs.
	// Machines created afterwards, by this process or another, get it.
	// Only when Capabilities().StagesImages; otherwise it fails as Invalid.
	StageImage(ctx context.Context, img StagedImage) error
	// CreateMachine creates the machine if no machine of that name exists and
	// returns it either way.
	CreateMachine(ctx context.Context, spec MachineSpec) (Machine, error)
	// CreateMachines creates several machines in as few calls as the
	// provider can, with CreateMachine's contract for each spec. It returns
	// the machines that exist, in spec order, and an error for the rest.
	CreateMachines(ctx context.Context, specs []MachineSpec) ([]Machine, error)
	// DeleteMachine removes the machine and what it alone owns (volumes).
	// A machine that does not exist is success.
	DeleteMachine(ctx context.Context, name string) error
	// MoveEndpoint makes the named control-plane machine the one that
	// Infrastructure.ControlPlaneEndpoint reaches. Call it once the
	// machine's API server is healthy, and before the machine that serves
	// the endpoint now is deleted: that is how a replacement control plane
	// takes over without a change of address. Calling it for the machine
	// that already serves the endpoint is success. A provider whose
	// endpoint follows health checks, or cannot move, says so in its doc
	// and returns nil; NotFound when no such control-plane machine exists.
	MoveEndpoint(ctx context.Context, machine string) error
	// ListMachines returns every machine owned by the cluster, found by
	// ownership labels or tags, even when the cluster itself is broken.
	ListMachines(ctx context.Context) ([]Machine, error)
	// ReadFile returns a small file from a machine; NotFound when the file
	// is not there (yet). Only when Capabilities().ReadsFiles; otherwise it
	// fails as Invalid.
	ReadFile(ctx context.Context, machine, path string) ([]byte, error)
	// LoadImage imports an image archive into a running machine's container
	// runtime, where its kubelet finds the images without pulling, and
	// returns once every image in the archive's Refs is there. The images
	// live as long as the machine. A provider that cannot reach its
	// machines' runtimes this way fails as Invalid, saying how its machines
	// get images instead.
	LoadImage(ctx context.Context, machine string, img ImageArchive) error
	// EnsureBackupStore creates, or finds, the cluster's backup store,
	// starts it if it is stopped, makes it reachable from the machines and
	// reports it. A caller that may not create it (the agent) does not
	// start it either: a stopped store is an error saying so. The store and what it holds outlive the cluster:
	// DestroyInfrastructure leaves them, and a cluster made again under
	// the same name finds them. Only when Capabilities().KeepsBackupStore;
	// otherwise it fails as Invalid. A caller that may not create it (the
	// agent) gets NotFound when it does not exist.
	EnsureBackupStore(ctx context.Context) (BackupStore, error)
	// DeleteBackupStore removes the cluster's backup store and every
	// backup in it. A store that does not exist is success.
	DeleteBackupStore(ctx context.Context) error
	// MachineTypeResources is what a new machine of the type will offer
	// pods: the allocatable its Node will report, so that a caller
	// planning capacity (the autoscaler) agrees with the scheduler. The
	// empty type is the provider's default machine. A type the provider
	// cannot make fails as Invalid, naming the type.
	MachineTypeResources(ctx context.Context, machineType string) (MachineResources, error)
}

// MachineResources is a Node's allocatable, in the units the Node reports.
type MachineResources struct {
	// MilliCPU is cpu in millicores.
	MilliCPU int64
	// Memory is in bytes.
	Memory int64
	// EphemeralStorage is in bytes; zero means the provider cannot know
	// it before the machine runs.
	EphemeralStorage int64
	// Pods is how many pods the kubelet admits (its maxPods).
	Pods int64
}

// BackupStore is an S3-compatible object store for a cluster's backups.
type BackupStore struct {
	// Endpoint is the store's URL as the machines' pods reach it.
	Endpoint string
	// Bucket is the bucket backups go to; it exists.
	Bucket string
	// Region is the region to sign requests for.
	Region string
	// AccessKeyID and SecretAccessKey are the store's credentials. Both
	// empty means the store takes the machines' own identity (on AWS, the
	// control plane's instance role): callers sign through the AWS SDK's
	// default chain. The agent still renders a credentials file for
	// Velero, whose profile then holds no keys; the SDK resolves such a
	// profile to the instance role through IMDS (checked with the
	// aws-sdk-go-v2 config module velero-plugin-for-aws v1.14.3 builds with).
	AccessKeyID     string
	SecretAccessKey string
}

// ImageArchive is a `docker save` tar stream of one or more images.
type ImageArchive struct {
	// Refs are the images the archive holds, as containerd names them
	// (docker.io/library/busybox:1.36).
	Refs []string
	Data io.Reader
	Size int64
}

// StagedImage is an image tarball (`docker save` format) a provider ships to
// machines.
type StagedImage struct {
	// Name is a short [a-z0-9-] name, such as "agent" or "network"; staging
	// a name again replaces the image.
	Name string
	// Workers false ships the image to control planes only; true ships it
	// to every machine.
	Workers bool
	Data    io.Reader
	Size    int64
}
