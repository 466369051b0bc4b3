package aws

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/go-logr/logr"

	"github.com/seedhq/seed/providers"
)

// ProviderName is the name the AWS provider registers under.
const ProviderName = "aws"

// Defaults of the tunables in Options.
const (
	DefaultListTTL          = 30 * time.Second
	DefaultRetryMaxAttempts = 10
	DefaultRetryMaxBackoff  = 20 * time.Second
	defaultPageSize         = 1000
)

// Options configure the AWS provider for one cluster.
type Options struct {
	// ClusterName is the cluster's name, a DNS label; it ends up in tags,
	// IAM names and the bucket name.
	ClusterName string
	// Region is the AWS region, e.g. "eu-west-1" (required).
	Region string
	// VPCID uses an existing VPC, with the subnets SubnetIDs names (both or
	// neither); empty means the provider creates and owns one.
	VPCID     string
	SubnetIDs []string
	// AvailabilityZones to spread owned subnets over; empty picks up to three.
	AvailabilityZones []string
	// AMI is the machine image; empty resolves Debian 12 for the region.
	AMI string
	// SSHKeyName is an optional EC2 key pair for debugging access.
	SSHKeyName string
	// AgentImage, when set, is a registry image the machines pull the agent
	// from (declared in Capabilities); empty means the seed stages its own.
	AgentImage string
	// CredentialsSecret, when set, names the Secret holding the agent's AWS
	// credentials (declared in Capabilities); empty means the control
	// plane's instance profile.
	CredentialsSecret string
	// MachineTypes are the instance types Preflight checks, keyed by the
	// spec field that names them, e.g.
	// {"spec.controlPlane.machineType": "t3.medium"}. Machines themselves
	// get their type from MachineSpec.MachineType.
	MachineTypes map[string]string
	// APIServerCIDRs may reach the API server on 6443 from outside the
	// cluster; empty means anywhere (0.0.0.0/0).
	APIServerCIDRs []string
	// ControlPlaneHopLimit is the IMDS hop limit of the control plane:
	// 2 (the default) lets the agent reach IMDS from a pod network
	// namespace; 1 is enough, and safer, when the agent runs on the host
	// network. Workers always get 1. See doc.go.
	ControlPlaneHopLimit int32
	// CreatesBackupStore lets EnsureBackupStore create the backup bucket
	// and set its configuration: the seed does. The agent does not: its
	// policy allows neither, and a bucket that `seed down
	// --delete-backups` removed must not come back because an agent
	// still running asked for it.
	CreatesBackupStore bool

	// Config builds the clients that are not injected. Nil loads the
	// standard chain (environment, shared config and credentials files,
	// SSO profiles, IMDSv2 on an instance) for Spec.Region and Profile.
	// Either way the provider installs its own retryer.
	Config *aws.Config
	// Profile is the shared-config profile to load when Config is nil;
	// empty means AWS_PROFILE or "default".
	Profile string

	// Injected clients, for tests. Nil ones are built from Config.
	EC2       EC2API
	IAM       IAMAPI
	S3        S3API
	STS       STSAPI
	Presigner S3Presigner

	// Logger receives one line per decision; the zero value discards.
	Logger logr.Logger
	// Clock drives backoff and caches; nil is the wall clock.
	Clock Clock
	// ListTTL is how long ListMachines answers from memory. Any write by
	// this provider invalidates it. Zero means DefaultListTTL; negative
	// disables the cache.
	ListTTL time.Duration
	// RetryMaxAttempts and RetryMaxBackoff tune the SDK retryer (jittered
	// exponential backoff). Zero means the defaults above.
	RetryMaxAttempts int
	RetryMaxBackoff  time.Duration
	// PageSize is MaxResults on paginated Describe calls; zero means 1000.
	PageSize int32
}

// Clock is the time source the provider waits on.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or returns ctx.Err() when ctx ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

var _ providers.Provider = (*provider)(nil)

// settings are the user's choices among Options, as the provider keeps them.
type settings struct {
	Region            string
	VPCID             string
	SubnetIDs         []string
	AvailabilityZones []string
	AMI               string
	SSHKeyName        string
}

// provider is the AWS implementation of providers.Provider.
type provider struct {
	cluster  string
	spec     settings
	caps     providers.Capabilities
	types    map[string]string
	apiCIDRs []string
	cpHops   int32
	ec2      EC2API
	iam      IAMAPI
	s3       S3API
	sts      STSAPI
	presign  S3Presigner
	log      logr.Logger
	clock    Clock
	listTTL  time.Duration
	pageSize int32
	// createsBackupStore: see Options.CreatesBackupStore.
	createsBackupStore bool

	mu sync.Mutex
	// net is the cluster's network as last found or made.
	net *network
	// images caches resolved AMIs by architecture, instanceTypes the
	// instance types described so far.
	images        map[string]image
	instanceTypes map[string]instanceType
	// cache, launched and deleted make ListMachines cheap and honest
	// under eventual consistency; see machines.go.
	cache    listCache
	launched map[string]record
	deleted  map[string]time.Time
	// account is the AWS account and partition, found once.
	account *account
	// ensuredAt is when this process last ran EnsureInfrastructure; EC2
	// may not see what it made for a few seconds after.
	ensuredAt time.Time
	// imageLists are the staged images by bucket prefix, as this process
	// staged or last listed them; see stagedImages.
	imageLists map[string]*imageList
	// bucket is the cluster bucket, once this process made sure it exists.
	bucket string
}

var clusterNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// New returns the AWS provider for one cluster. It makes no AWS call;
// credentials are resolved on the first one.
func New(ctx context.Context, opts Options) (providers.Provider, error) {
	return newProvider(ctx, opts)
}

func newProvider(ctx context.Context, opts Options) (*provider, error) {
	const op = "configuring the AWS provider"
	if !clusterNameRE.MatchString(opts.ClusterName) {
		return nil, providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("cluster name %q must be a DNS label", opts.ClusterName))
	}
	if opts.Region == "" {
		return nil, providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("spec.provider.aws.region is required"))
	}
	if opts.VPCID != "" && len(opts.SubnetIDs) == 0 {
		return nil, providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("spec.provider.aws.subnetIDs is required with spec.provider.aws.vpcID"))
	}
	if opts.VPCID == "" && len(opts.SubnetIDs) > 0 {
		return nil, providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("spec.provider.aws.vpcID is required with spec.provider.aws.subnetIDs"))
	}
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	p := &provider{
		cluster: opts.ClusterName,
		spec: settings{
			Region:            opts.Region,
			VPCID:             opts.VPCID,
			SubnetIDs:         slices.Clone(opts.SubnetIDs),
			AvailabilityZones: slices.Clone(opts.AvailabilityZones),
			AMI:               opts.AMI,
			SSHKeyName:        opts.SSHKeyName,
		},
		// Machines boot a stock image: kubeadm pulls Kubernetes' images,
		// and the seed stages its own through the cluster bucket. There is
		// no way in to read files; the seed keeps the credentials it signs.
		caps: providers.Capabilities{
			StagesImages: true,
			// A bucket of its own, which DestroyInfrastructure keeps; see
			// backupstore.go.
			KeepsBackupStore: true,
			Agent: providers.AgentRequirements{
				Image:             opts.AgentImage,
				CredentialsSecret: opts.CredentialsSecret,
			},
		},
		types:         opts.MachineTypes,
		apiCIDRs:      opts.APIServerCIDRs,
		cpHops:        opts.ControlPlaneHopLimit,
		ec2:           opts.EC2,
		iam:           opts.IAM,
		s3:            opts.S3,
		sts:           opts.STS,
		presign:       opts.Presigner,
		log:           log.WithValues("provider", ProviderName, "cluster", opts.ClusterName),
		clock:         opts.Clock,
		listTTL:       opts.ListTTL,
		pageSize:      opts.PageSize,
		images:        map[string]image{},
		instanceTypes: map[string]instanceType{},
		launched:      map[string]record{},
		deleted:       map[string]time.Time{},
		imageLists:    map[string]*imageList{},

		createsBackupStore: opts.CreatesBackupStore,
	}
	if len(p.apiCIDRs) == 0 {
		p.apiCIDRs = []string{"0.0.0.0/0"}
	}
	if p.clock == nil {
		p.clock = wallClock{}
	}
	if p.cpHops == 0 {
		p.cpHops = 2
	}
	if p.cpHops < 1 || p.cpHops > 64 {
		return nil, providers.NewError(providers.KindInvalid, op, fmt.Errorf("control-plane IMDS hop limit %d is not between 1 and 64", p.cpHops))
	}
	if p.listTTL == 0 {
		p.listTTL = DefaultListTTL
	}
	if p.pageSize == 0 {
		p.pageSize = defaultPageSize
	}
	if p.pageSize < 5 || p.pageSize > 1000 {
		return nil, providers.NewError(providers.KindInvalid, op, fmt.Errorf("page size %d is not between 5 and 1000, EC2's bounds", p.pageSize))
	}
	if p.ec2 != nil && p.iam != nil && p.s3 != nil && p.sts != nil && p.presign != nil {
		return p, nil
	}
	cfg, err := loadConfig(ctx, opts)
	if err != nil {
		return nil, providers.NewError(providers.KindInvalid, op, err)
	}
	if p.ec2 == nil {
		p.ec2 = ec2.NewFromConfig(cfg)
	}
	if p.iam == nil {
		p.iam = iam.NewFromConfig(cfg)
	}
	if p.sts == nil {
		p.sts = sts.NewFromConfig(cfg)
	}
	if p.s3 == nil || p.presign == nil {
		c := s3.NewFromConfig(cfg)
		if p.s3 == nil {
			p.s3 = c
		}
		if p.presign == nil {
			p.presign = s3.NewPresignClient(c)
		}
	}
	return p, nil
}

// loadConfig returns the SDK configuration with the provider's retryer.
func loadConfig(ctx context.Context, opts Options) (aws.Config, error) {
	retryer := func() aws.Retryer { return NewRetryer(opts.RetryMaxAttempts, opts.RetryMaxBackoff) }
	if opts.Config != nil {
		cfg := opts.Config.Copy()
		if cfg.Region == "" {
			cfg.Region = opts.Region
		}
		cfg.Retryer = retryer
		return cfg, nil
	}
	lo := []func(*config.LoadOptions) error{
		config.WithRegion(opts.Region),
		config.WithRetryer(retryer),
	}
	if opts.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(opts.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return cfg, nil
}

// NewRetryer is the SDK retryer the provider uses: the standard one
// (exponential backoff with full jitter, throttling codes such as
// RequestLimitExceeded retried) with more attempts, and capacity errors
// never retried in place because the provider tries the next zone instead.
// Zero arguments mean DefaultRetryMaxAttempts and DefaultRetryMaxBackoff.
func NewRetryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	if maxAttempts <= 0 {
		maxAttempts = DefaultRetryMaxAttempts
	}
	if maxBackoff <= 0 {
		maxBackoff = DefaultRetryMaxBackoff
	}
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.Backoff = retry.NewExponentialJitterBackoff(maxBackoff)
		o.Retryables = append([]retry.IsErrorRetryable{noRetryOnCapacity}, o.Retryables...)
	})
}

// Name is the provider's registered name.
func (p *provider) Name() string { return ProviderName }

// Capabilities implements providers.Provider.
func (p *provider) Capabilities() providers.Capabilities { return p.caps }

// ReadFile implements providers.Provider: EC2 offers no way to read a file
// off an instance without a way in (SSH, SSM) that Seed does not set up.
func (p *provider) ReadFile(_ context.Context, machine, path string) ([]byte, error) {
	return nil, providers.NewError(providers.KindInvalid, fmt.Sprintf("reading %s from machine %s", path, machine),
		errors.New("the AWS provider cannot read files off instances"))
}

// LoadImage implements providers.Provider. Instances are reachable only
// through their first boot, which already fetches the images the seed
// staged in the cluster's bucket; nothing copies into a running one.
func (p *provider) LoadImage(_ context.Context, machine string, _ providers.ImageArchive) error {
	return providers.NewError(providers.KindInvalid, "loading images into machine "+machine,
		errors.New("loading local images into AWS instances is not implemented: push the image to a registry the nodes can pull from "+
			"(and use it from there), or stage it through the cluster's S3 bucket as the seed stages the agent and network images"))
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
