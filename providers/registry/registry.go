package registry

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws"
	"github.com/seedhq/seed/providers/docker"
	"github.com/seedhq/seed/providers/simulated"
)

// Env is what a provider may need beyond the spec.
type Env struct {
	Logger logr.Logger
	// AgentImage is the agent image the seed installs, when it is the one
	// building the provider. The Docker provider runs its load balancer
	// from it; the agent leaves it empty, since it never creates one.
	AgentImage string
	// OnHost: the caller is the seed, on the machine that hosts the
	// provider, where a provider may keep what outlives the cluster (the
	// Docker provider's backup store and its directory). The agent leaves
	// it false: it never creates the store, only starts it.
	OnHost bool
	// Kube reaches the cluster's API server, when the caller has one: the
	// agent does, the seed before `seed up` has made it does not. The
	// simulated provider's machines are Nodes created through it.
	Kube *rest.Config
}

// Factory builds one kind of provider from a spec.
type Factory func(ctx context.Context, c *v1alpha1.Cluster, env Env) (providers.Provider, error)

// factories is the registration table, one line per provider.
var factories = map[string]Factory{
	"docker":    newDocker,
	"aws":       newAWS,
	"simulated": newSimulated,
}

// Name returns the name of the provider the spec selects.
func Name(c *v1alpha1.Cluster) string {
	switch {
	case c.Spec.Provider.Docker != nil:
		return "docker"
	case c.Spec.Provider.AWS != nil:
		return "aws"
	case c.Spec.Provider.Simulated != nil:
		return "simulated"
	}
	return ""
}

// New builds the provider the spec selects.
func New(ctx context.Context, c *v1alpha1.Cluster, env Env) (providers.Provider, error) {
	name := Name(c)
	f, ok := factories[name]
	if !ok {
		return nil, providers.NewError(providers.KindInvalid, "choosing a provider",
			fmt.Errorf("no provider is selected: set spec.provider.docker, spec.provider.aws or spec.provider.simulated"))
	}
	return f(ctx, c, env)
}

func newDocker(_ context.Context, c *v1alpha1.Cluster, env Env) (providers.Provider, error) {
	d := c.Spec.Provider.Docker
	opts := docker.Options{
		ClusterName:   c.Metadata.Name,
		NodeImage:     d.NodeImage,
		Privileged:    d.Privileged,
		APIServerPort: d.APIServerPort,
		LBImage:       env.AgentImage,
		MachineTypes:  machineTypes(c),
		Logger:        env.Logger,
	}
	if env.OnHost {
		dir, err := docker.DefaultBackupDir(c.Metadata.Name)
		if err != nil {
			return nil, err
		}
		opts.BackupDir, opts.BackupImage = dir, docker.BackupStoreImage
	}
	return docker.New(opts)
}

// machineTypes are the spec's machine types that are set, keyed by the
// field that sets them, for the providers' Preflight to name.
func machineTypes(c *v1alpha1.Cluster) map[string]string {
	types := map[string]string{}
	if t := c.Spec.ControlPlane.MachineType; t != "" {
		types["spec.controlPlane.machineType"] = t
	}
	for i, p := range c.Spec.NodePools {
		if p.MachineType != "" {
			types[fmt.Sprintf("spec.nodePools[%d].machineType", i)] = p.MachineType
		}
	}
	return types
}

func newAWS(ctx context.Context, c *v1alpha1.Cluster, env Env) (providers.Provider, error) {
	types := machineTypes(c)
	a := c.Spec.Provider.AWS
	return aws.New(ctx, aws.Options{
		ClusterName:       c.Metadata.Name,
		Region:            a.Region,
		VPCID:             a.VPCID,
		SubnetIDs:         a.SubnetIDs,
		AvailabilityZones: a.AvailabilityZones,
		AMI:               a.AMI,
		SSHKeyName:        a.SSHKeyName,
		AgentImage:        a.AgentImage,
		CredentialsSecret: a.CredentialsSecret,
		MachineTypes:      types,
		// The agent runs on the pod network: IMDS is two hops away (see
		// providers/aws/doc.go for what that exposes and what limits it).
		ControlPlaneHopLimit: 2,
		// The agent only finds the backup bucket the seed made.
		CreatesBackupStore: env.OnHost,
		Logger:             env.Logger,
	})
}

func newSimulated(_ context.Context, c *v1alpha1.Cluster, env Env) (providers.Provider, error) {
	var delay time.Duration
	if d := c.Spec.Provider.Simulated.RegistrationDelay; d != nil {
		delay = d.Duration
	}
	var cfg *rest.Config
	if env.Kube != nil {
		cfg = rest.CopyConfig(env.Kube)
		cfg.UserAgent = "seed-agent/simulated-provider"
		// Its Node writes stand in for a cloud's API calls, whose limits
		// are the cloud's, not the agent's client limit (20 a second) for
		// its own requests; its requests still count in the agent's
		// metrics, the transport being the same.
		cfg.QPS, cfg.Burst = 200, 400
	}
	return simulated.New(simulated.Options{
		ClusterName:       c.Metadata.Name,
		Config:            cfg,
		RegistrationDelay: delay,
	})
}

// LocalImage exports ref from the local Docker engine, where `make images`
// builds Seed's images, as a `docker save` tar stream. It is where the seed
// gets every image it ships, whichever provider the cluster runs on; it is
// here because the engine client belongs to the Docker provider, and this
// package is the one outside providers/docker that may use it.
func LocalImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	return docker.SaveImage(ctx, "", ref)
}

// InspectLocalImage reads ref from the local Docker engine, where the
// images `seed load image` loads come from; NotFound when it has no such
// image.
func InspectLocalImage(ctx context.Context, ref string) (docker.LocalImage, error) {
	return docker.InspectLocalImage(ctx, "", ref)
}

// SaveLocalImages exports refs from the local Docker engine as one
// `docker save` tar stream.
func SaveLocalImages(ctx context.Context, refs []string) (io.ReadCloser, error) {
	return docker.SaveImages(ctx, "", refs)
}
