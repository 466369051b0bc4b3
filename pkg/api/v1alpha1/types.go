package v1alpha1

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

const (
	// Group is the API group of the cluster spec.
	Group = "seed.dev"
	// Version is the only version of the cluster spec so far.
	Version = "v1alpha1"
	// APIVersion is what a spec's apiVersion field must say.
	APIVersion = Group + "/" + Version
	// KindCluster is what a spec's kind field must say.
	KindCluster = "Cluster"
)

// Cluster is the whole user-facing spec: one document, usually kept in the
// agent's spec ConfigMap under the key "cluster.yaml".
type Cluster struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   ObjectMeta  `json:"metadata"`
	Spec       ClusterSpec `json:"spec"`
}

// ObjectMeta names the cluster. The name is a DNS-1123 label because it ends
// up in machine names, Docker networks and AWS tags.
type ObjectMeta struct {
	Name string `json:"name"`
}

// ClusterSpec is what the user wants the cluster to be.
type ClusterSpec struct {
	// KubernetesVersion is the version of the control plane and the default
	// version of every pool, e.g. "v1.34.2".
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// Paused stops the agent from taking any action; it keeps observing and
	// reporting status.
	Paused bool `json:"paused,omitempty"`

	Provider     ProviderSpec     `json:"provider"`
	ControlPlane ControlPlaneSpec `json:"controlPlane,omitempty"`
	NodePools    []NodePool       `json:"nodePools,omitempty"`
	Health       HealthSpec       `json:"health,omitempty"`
	Rollout      RolloutSpec      `json:"rollout,omitempty"`
	Backup       BackupSpec       `json:"backup,omitempty"`
	// Autoscaling tunes how autoscaled pools (those with minReplicas and
	// maxReplicas) shrink; it may be set only when a pool is autoscaled.
	Autoscaling AutoscalingSpec `json:"autoscaling,omitempty"`
}

// ProviderSpec selects exactly one infrastructure provider.
type ProviderSpec struct {
	Docker    *DockerProviderSpec    `json:"docker,omitempty"`
	AWS       *AWSProviderSpec       `json:"aws,omitempty"`
	Simulated *SimulatedProviderSpec `json:"simulated,omitempty"`
}

// SimulatedProviderSpec configures machines that are Nodes the agent
// creates itself and kwok (sigs.k8s.io/kwok) keeps alive: no kubelet, no
// container, a few KiB each. It is for measuring the agent at thousands of
// machines against a real API server; only an agent already running against
// that API server can use it (seed up refuses it). Machine types are
// sim-<cpu>x<memory GiB>: sim-2x8, sim-4x16, sim-8x32 (the default),
// sim-16x64.
type SimulatedProviderSpec struct {
	// RegistrationDelay is how long a new machine takes to register its
	// Node with kwok, standing in for boot time (default 0, at most 5m).
	RegistrationDelay *Duration `json:"registrationDelay,omitempty"`
}

// DockerProviderSpec configures machines that are containers on the local
// Docker engine. A Docker machine type is empty, for a machine whose Node
// offers pods the whole host, or <cpu>x<memory> in Kubernetes quantities
// (1x2Gi, 500mx1Gi, 2x4Gi): the cpu and memory its Node's allocatable
// reports, the kubelet reserving the rest of the host. It is what the
// scheduler counts, not a limit on the container: every machine still
// shares the host's CPUs and memory.
type DockerProviderSpec struct {
	// NodeImage is the node image to run; defaults to seed-node:<kubernetesVersion>.
	NodeImage string `json:"nodeImage,omitempty"`
	// Privileged runs machines with --privileged instead of the explicit
	// capability set; only for hosts that allow it.
	Privileged bool `json:"privileged,omitempty"`
	// APIServerPort is the host port (on 127.0.0.1) mapped to the API server.
	// Zero picks a free port once, when the cluster is created.
	APIServerPort int32 `json:"apiServerPort,omitempty"`
}

// AWSProviderSpec configures machines that are EC2 instances.
type AWSProviderSpec struct {
	// Region is the AWS region, e.g. "eu-west-1".
	Region string `json:"region"`
	// VPCID uses an existing VPC; empty means Seed creates and owns one.
	VPCID string `json:"vpcID,omitempty"`
	// SubnetIDs uses existing subnets (required with VPCID).
	SubnetIDs []string `json:"subnetIDs,omitempty"`
	// AvailabilityZones to spread owned subnets over; empty picks up to three.
	AvailabilityZones []string `json:"availabilityZones,omitempty"`
	// AMI is the machine image; empty resolves Debian 12 for the region.
	AMI string `json:"ami,omitempty"`
	// SSHKeyName is an optional EC2 key pair for debugging access.
	SSHKeyName string `json:"sshKeyName,omitempty"`
	// AgentImage is an image reference the nodes can pull the agent from;
	// empty means Seed ships its own image through a bucket the cluster owns.
	AgentImage string `json:"agentImage,omitempty"`
	// CredentialsSecret names a Secret in the agent's namespace holding
	// AWS credentials; empty means the instance profile (IMDSv2).
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
}

// ControlPlaneSpec describes the single control-plane machine.
type ControlPlaneSpec struct {
	MachineType string `json:"machineType,omitempty"`
}

// NodePool is a group of identical worker machines. A pool either has a
// fixed size, replicas, or is autoscaled: with minReplicas and maxReplicas
// set (and replicas left out), the agent chooses its size between them
// from pending pods and idle nodes, and reports that size in its status;
// the spec is never written by the agent.
type NodePool struct {
	Name string `json:"name"`
	// Replicas is a fixed pool's size; an autoscaled pool leaves it out.
	Replicas int32 `json:"replicas"`
	// MinReplicas and MaxReplicas, both or neither, make the pool
	// autoscaled between them.
	MinReplicas *int32            `json:"minReplicas,omitempty"`
	MaxReplicas *int32            `json:"maxReplicas,omitempty"`
	MachineType string            `json:"machineType,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Taints      []Taint           `json:"taints,omitempty"`
	// KubernetesVersion overrides the cluster's version for this pool.
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
}

// Autoscaled reports whether the agent chooses the pool's size: both
// minReplicas and maxReplicas are set.
func (p *NodePool) Autoscaled() bool { return p.MinReplicas != nil && p.MaxReplicas != nil }

// AutoscalingSpec tunes scale-down of autoscaled pools. A node is removed
// when every pod on it can move elsewhere and its pods request less than
// scaleDownUtilizationThreshold of it, continuously for
// scaleDownUnneededTime, and its pool has not grown for
// scaleDownDelayAfterAdd.
type AutoscalingSpec struct {
	// ScaleDownUnneededTime is how long a node must stay unneeded before it
	// is drained and removed (default 5m).
	ScaleDownUnneededTime *Duration `json:"scaleDownUnneededTime,omitempty"`
	// ScaleDownDelayAfterAdd is how long after a pool last grew none of its
	// nodes is removed (default 5m).
	ScaleDownDelayAfterAdd *Duration `json:"scaleDownDelayAfterAdd,omitempty"`
	// ScaleDownUtilizationThreshold is the percentage of a node's
	// allocatable cpu and memory its pods' requests must both stay below
	// for it to count as unneeded (default 50).
	ScaleDownUtilizationThreshold *int32 `json:"scaleDownUtilizationThreshold,omitempty"`
}

// Taint is a Node taint applied to every machine of a pool when it joins.
type Taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

// HealthSpec says when a machine counts as unhealthy and how much
// remediation may happen at once.
type HealthSpec struct {
	// NodeStartupTimeout is how long a new machine may take to become a Ready
	// Node (default 10m).
	NodeStartupTimeout *Duration `json:"nodeStartupTimeout,omitempty"`
	// NodeNotReadyTimeout is how long a Node may stay NotReady or Unknown
	// before its machine is replaced (default 5m).
	NodeNotReadyTimeout *Duration `json:"nodeNotReadyTimeout,omitempty"`
	// MaxUnhealthy stops remediation when more machines than this are
	// unhealthy at once: a count or a percentage (default 40%).
	MaxUnhealthy *IntOrPercent `json:"maxUnhealthy,omitempty"`
}

// RolloutSpec bounds rolling replacement of machines.
type RolloutSpec struct {
	// MaxSurge is how many machines above replicas may exist during a rollout (default 1).
	MaxSurge *int32 `json:"maxSurge,omitempty"`
	// MaxUnavailable is how many machines below replicas may be unavailable (default 0).
	MaxUnavailable *int32 `json:"maxUnavailable,omitempty"`
	// DrainTimeout is how long a drain may take before the policy applies (default 10m).
	DrainTimeout *Duration `json:"drainTimeout,omitempty"`
}

// BackupSpec configures Velero backups, taken before every risky change:
// a Kubernetes version change, a control-plane replacement, the removal
// of a node pool. Each waits until its backup is complete and stored with
// an etcd snapshot (see pkg/plan, "Backups before risky changes").
type BackupSpec struct {
	Enabled bool `json:"enabled,omitempty"`
	// StorageLocation is the Velero BackupStorageLocation backups go to:
	// only BackupStorageLocation, the one Seed keeps, may be named.
	StorageLocation string `json:"storageLocation,omitempty"`
	// BeforeUpgrade takes a backup before a Kubernetes version change
	// (default true when enabled); false lets version changes go ahead
	// without one. Control-plane replacements for other reasons and pool
	// removals wait for theirs either way.
	BeforeUpgrade *bool `json:"beforeUpgrade,omitempty"`
	// Schedule is an optional cron schedule for periodic backups.
	Schedule string `json:"schedule,omitempty"`
	// MaxAge is how long before a risky change its backup may have
	// completed and still let it go ahead (default 30m when enabled).
	MaxAge *Duration `json:"maxAge,omitempty"`
	// Store is an S3-compatible object store for the backups. Without it,
	// the provider's own store is used (Docker: a versitygw container whose
	// data outlives the cluster); the AWS provider has none yet.
	Store *BackupStoreSpec `json:"store,omitempty"`
}

// BackupStoreSpec names an S3-compatible store: AWS S3, MinIO, Ceph, a
// versitygw of your own. Backups go under the prefix velero/ of the bucket.
type BackupStoreSpec struct {
	// Endpoint is the store's URL as the cluster's pods reach it, such as
	// https://s3.eu-west-1.amazonaws.com or http://10.0.0.5:9000.
	Endpoint string `json:"endpoint"`
	// Bucket must exist; Seed creates no buckets in stores it does not own.
	Bucket string `json:"bucket"`
	// Region to sign requests for (default us-east-1, which most
	// S3-compatible servers accept).
	Region string `json:"region,omitempty"`
	// CredentialsSecret names a Secret in the agent's namespace whose key
	// "cloud" is an AWS shared-credentials file for the store.
	CredentialsSecret string `json:"credentialsSecret"`
}

// MaxSimulatedRegistrationDelay bounds spec.provider.simulated.registrationDelay.
const MaxSimulatedRegistrationDelay = 5 * time.Minute

// DefaultSimulatedMachineType is a simulated machine's type when its pool
// names none.
const DefaultSimulatedMachineType = "sim-8x32"

// SimulatedMachineType is what a simulated machine of the named type has:
// CPUs and memory in GiB; ok is false for a name the simulated provider
// does not know. Each type holds 110 pods, a kubelet's default.
func SimulatedMachineType(name string) (cpus, memoryGiB int, ok bool) {
	switch name {
	case "sim-2x8":
		return 2, 8, true
	case "sim-4x16":
		return 4, 16, true
	case "sim-8x32":
		return 8, 32, true
	case "sim-16x64":
		return 16, 64, true
	}
	return 0, 0, false
}

// simulatedMachineTypes lists the names SimulatedMachineType knows, for
// error messages.
const simulatedMachineTypes = "sim-2x8, sim-4x16, sim-8x32 or sim-16x64"

// Bounds of a Docker machine type: below them a node cannot run its own
// DaemonSets (kube-proxy, the pod network) with room for anything else.
const (
	MinDockerMachineMilliCPU = 100
	MinDockerMachineMemory   = 512 << 20
)

// DockerMachineType parses a sized Docker machine type, <cpu>x<memory>
// (1x2Gi, 500mx1Gi), into the allocatable cpu in millicores and memory in
// bytes it stands for. ok is false for the empty type, for a name of any
// other form, and for quantities that are not whole millicores and bytes;
// it does not check MinDockerMachineMilliCPU or MinDockerMachineMemory.
func DockerMachineType(name string) (milliCPU, memoryBytes int64, ok bool) {
	c, m, found := strings.Cut(name, "x")
	if !found {
		return 0, 0, false
	}
	cpu, err := resource.ParseQuantity(c)
	if err != nil {
		return 0, 0, false
	}
	mem, err := resource.ParseQuantity(m)
	if err != nil {
		return 0, 0, false
	}
	milliCPU, memoryBytes = cpu.MilliValue(), mem.Value()
	// MilliValue and Value round up: a quantity finer than they can hold
	// (0.0001 CPUs, 1.5 bytes) would not be what the Node reports.
	if cpu.Cmp(*resource.NewMilliQuantity(milliCPU, resource.DecimalSI)) != 0 ||
		mem.Cmp(*resource.NewQuantity(memoryBytes, resource.BinarySI)) != 0 {
		return 0, 0, false
	}
	return milliCPU, memoryBytes, true
}
