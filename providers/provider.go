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

// Provider creates and removes a cluster's machines. Every method is safe to
// call again after a failure or a crash, and safe when two callers overlap.
type Provider interface {
	// Name is the provider's registered name ("docker", "aws", "fake").
	Name() string
	// EnsureInfrastructure creates, or finds, the cluster-wide resources
	// (networks, security groups, endpoint) and reports them.
	EnsureInfrastructure(ctx context.Context) (Infrastructure, error)
	// DestroyInfrastructure removes everything the cluster owns, machines
	// included, found by ownership labels or tags. Nothing found is success.
	DestroyInfrastructure(ctx context.Context) error
	// CreateMachine creates the machine if no machine of that name exists and
	// returns it either way.
	CreateMachine(ctx context.Context, spec MachineSpec) (Machine, error)
	// DeleteMachine removes the machine and what it alone owns (volumes).
	// A machine that does not exist is success.
	DeleteMachine(ctx context.Context, name string) error
	// ListMachines returns every machine owned by the cluster, found by
	// ownership labels or tags, even when the cluster itself is broken.
	ListMachines(ctx context.Context) ([]Machine, error)
}

// Optional capabilities. Callers type-assert for them. The metrics
// decorator keeps BatchCreator, the one the agent uses, visible.

// BatchCreator creates several machines in as few calls as the provider
// can, with CreateMachine's contract for each spec: asking again for a name
// that exists returns it. It returns the machines that exist, in spec order.
type BatchCreator interface {
	CreateMachines(ctx context.Context, specs []MachineSpec) ([]Machine, error)
}

// Preflighter checks, before anything is created, that a spec can work
// (region, machine types, images), naming the spec field at fault.
type Preflighter interface {
	Preflight(ctx context.Context) error
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

// ImageStager ships images to machines without a registry: it stores an
// image where the first boot of the machines it applies to fetches and
// imports it into containerd, before the bootstrap script runs. Machines
// created afterwards, by this process or another, get it.
type ImageStager interface {
	StageImage(ctx context.Context, img StagedImage) error
}
