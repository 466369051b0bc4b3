package v1alpha1

import (
	"strings"
	"testing"
	"time"
)

// validCluster is a defaulted spec that passes Validate; each test row breaks
// one thing in it.
func validCluster() *Cluster {
	c := &Cluster{
		Metadata: ObjectMeta{Name: "lab"},
		Spec: ClusterSpec{
			KubernetesVersion: "v1.34.2",
			Provider:          ProviderSpec{Docker: &DockerProviderSpec{}},
			NodePools: []NodePool{
				{Name: "workers", Replicas: 2, Labels: map[string]string{"tier": "general"}},
				{Name: "gpu", Replicas: 1, Taints: []Taint{{Key: "nvidia.com/gpu", Effect: "NoSchedule"}}},
			},
		},
	}
	SetDefaults(c)
	return c
}

func awsProvider(c *Cluster) *AWSProviderSpec {
	c.Spec.Provider = ProviderSpec{AWS: &AWSProviderSpec{Region: "eu-west-1"}}
	return c.Spec.Provider.AWS
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Cluster)
		running string
		want    []FieldError
	}{
		{name: "valid", mutate: func(*Cluster) {}},

		// apiVersion and kind
		{
			name:   "wrong apiVersion",
			mutate: func(c *Cluster) { c.APIVersion = "seed.dev/v1" },
			want:   []FieldError{{Field: "apiVersion", Detail: `unsupported apiVersion "seed.dev/v1": must be "seed.dev/v1alpha1"`}},
		},
		{
			name:   "wrong kind",
			mutate: func(c *Cluster) { c.Kind = "Pod" },
			want:   []FieldError{{Field: "kind", Detail: `unsupported kind "Pod": must be "Cluster"`}},
		},

		// metadata.name
		{
			name:   "name missing",
			mutate: func(c *Cluster) { c.Metadata.Name = "" },
			want:   []FieldError{{Field: "metadata.name", Detail: "required"}},
		},
		{
			name:   "name not a DNS-1123 label",
			mutate: func(c *Cluster) { c.Metadata.Name = "My_Lab" },
			want:   []FieldError{{Field: "metadata.name", Detail: `invalid name "My_Lab": a lowercase RFC 1123 label`}},
		},
		{
			name:   "name with dots",
			mutate: func(c *Cluster) { c.Metadata.Name = "lab.example" },
			want:   []FieldError{{Field: "metadata.name", Detail: "must not contain dots"}},
		},
		{
			name:   "name too long for machine names",
			mutate: func(c *Cluster) { c.Metadata.Name = strings.Repeat("a", 41) },
			want:   []FieldError{{Field: "metadata.name", Detail: "is 41 characters long: at most 40 are allowed"}},
		},
		{
			name:   "name of 40 characters",
			mutate: func(c *Cluster) { c.Metadata.Name = strings.Repeat("a", 40) },
		},

		// spec.kubernetesVersion
		{
			name:   "version missing",
			mutate: func(c *Cluster) { c.Spec.KubernetesVersion = "" },
			want:   []FieldError{{Field: "spec.kubernetesVersion", Detail: "required"}},
		},
		{
			name:   "version without v",
			mutate: func(c *Cluster) { c.Spec.KubernetesVersion = "1.34.2"; c.Spec.NodePools = nil },
			want:   []FieldError{{Field: "spec.kubernetesVersion", Detail: `invalid Kubernetes version "1.34.2": write it as vMAJOR.MINOR.PATCH`}},
		},
		{
			name:   "version without patch",
			mutate: func(c *Cluster) { c.Spec.KubernetesVersion = "v1.34"; c.Spec.NodePools = nil },
			want:   []FieldError{{Field: "spec.kubernetesVersion", Detail: "write it as vMAJOR.MINOR.PATCH"}},
		},
		{
			name:   "pre-release version",
			mutate: func(c *Cluster) { c.Spec.KubernetesVersion = "v1.35.0-rc.1"; c.Spec.NodePools = nil },
			want:   []FieldError{{Field: "spec.kubernetesVersion", Detail: "write it as vMAJOR.MINOR.PATCH"}},
		},
		{
			name:   "version too old",
			mutate: func(c *Cluster) { c.Spec.KubernetesVersion = "v1.29.9"; c.Spec.NodePools = nil },
			want:   []FieldError{{Field: "spec.kubernetesVersion", Detail: "Kubernetes v1.29.9 is not supported: use a version from v1.30 to v1.36"}},
		},
		{
			name:   "version too new",
			mutate: func(c *Cluster) { c.Spec.KubernetesVersion = "v1.37.0"; c.Spec.NodePools = nil },
			want:   []FieldError{{Field: "spec.kubernetesVersion", Detail: "not supported"}},
		},
		{
			name:   "version of another major",
			mutate: func(c *Cluster) { c.Spec.KubernetesVersion = "v2.34.0"; c.Spec.NodePools = nil },
			want:   []FieldError{{Field: "spec.kubernetesVersion", Detail: "not supported"}},
		},
		{
			name: "oldest and newest supported",
			mutate: func(c *Cluster) {
				c.Spec.KubernetesVersion = "v1.36.0"
				c.Spec.NodePools[0].KubernetesVersion = "v1.33.0"
			},
		},

		// against the running version
		{
			name:    "same as running",
			running: "v1.34.2",
		},
		{
			name:    "a patch upgrade",
			running: "v1.34.0",
		},
		{
			name:    "a minor upgrade",
			mutate:  func(c *Cluster) { c.Spec.KubernetesVersion = "v1.35.0" },
			running: "v1.34.2",
		},
		{
			name: "an upgrade with a node image pinned",
			mutate: func(c *Cluster) {
				c.Spec.Provider = ProviderSpec{Docker: &DockerProviderSpec{NodeImage: "my-node:1"}}
			},
			running: "v1.33.13",
			want: []FieldError{{Field: "spec.provider.docker.nodeImage",
				Detail: `"my-node:1" runs one Kubernetes version on every machine, and the cluster runs v1.33.13 while spec.kubernetesVersion asks for v1.34.2: ` +
					"remove nodeImage (machines then run seed-node:<version>, built by hack/build-images.sh VERSION), or set spec.kubernetesVersion back to v1.33.13"}},
		},
		{
			name:    "the running version",
			running: "v1.34.2",
		},
		{
			name:    "downgrade",
			running: "v1.35.1",
			want:    []FieldError{{Field: "spec.kubernetesVersion", Detail: "the cluster runs v1.35.1 and Kubernetes cannot be downgraded to v1.34.2: set v1.35.1 or later"}},
		},
		{
			name:    "patch downgrade",
			running: "v1.34.3",
			want:    []FieldError{{Field: "spec.kubernetesVersion", Detail: "cannot be downgraded"}},
		},
		{
			name:    "minor skip",
			mutate:  func(c *Cluster) { c.Spec.KubernetesVersion = "v1.35.0"; c.Spec.NodePools = nil },
			running: "v1.33.4",
			want:    []FieldError{{Field: "spec.kubernetesVersion", Detail: "the cluster runs v1.33.4 and cannot skip minor versions to v1.35.0: upgrade to v1.34.x first"}},
		},

		// spec.provider
		{
			name:   "no provider",
			mutate: func(c *Cluster) { c.Spec.Provider = ProviderSpec{} },
			want:   []FieldError{{Field: "spec.provider", Detail: "set exactly one of spec.provider.docker, spec.provider.aws or spec.provider.simulated"}},
		},
		{
			name: "two providers",
			mutate: func(c *Cluster) {
				c.Spec.Provider.AWS = &AWSProviderSpec{Region: "eu-west-1"}
			},
			want: []FieldError{{Field: "spec.provider", Detail: "both docker and aws are set: set exactly one of spec.provider.docker, spec.provider.aws or spec.provider.simulated"}},
		},
		{
			name: "simulated, with an unknown machine type",
			mutate: func(c *Cluster) {
				c.Spec.Provider = ProviderSpec{Simulated: &SimulatedProviderSpec{}}
				c.Spec.NodePools[0].MachineType = "m5.large"
			},
			want: []FieldError{{Field: "spec.nodePools[0].machineType", Detail: `unknown simulated machine type "m5.large": use sim-2x8, sim-4x16, sim-8x32 or sim-16x64`}},
		},
		{
			name: "simulated, registration delay out of range",
			mutate: func(c *Cluster) {
				c.Spec.Provider = ProviderSpec{Simulated: &SimulatedProviderSpec{RegistrationDelay: NewDuration(time.Hour)}}
			},
			want: []FieldError{{Field: "spec.provider.simulated.registrationDelay", Detail: "1h0m0s is out of range: use 0 to 5m0s"}},
		},
		{
			name: "simulated, valid",
			mutate: func(c *Cluster) {
				c.Spec.Provider = ProviderSpec{Simulated: &SimulatedProviderSpec{RegistrationDelay: NewDuration(2 * time.Second)}}
				c.Spec.NodePools[0].MachineType = "sim-2x8"
			},
		},
		{
			name:   "docker port out of range",
			mutate: func(c *Cluster) { c.Spec.Provider.Docker.APIServerPort = 70000 },
			want:   []FieldError{{Field: "spec.provider.docker.apiServerPort", Detail: "use 1 to 65535, or 0"}},
		},
		{
			name: "docker, sized machine types",
			mutate: func(c *Cluster) {
				c.Spec.ControlPlane.MachineType = "2x4Gi"
				c.Spec.NodePools[0].MachineType = "500mx1Gi"
				c.Spec.NodePools[1].MachineType = "100mx512Mi"
			},
		},
		{
			name: "docker, a machine type of another form",
			mutate: func(c *Cluster) {
				c.Spec.ControlPlane.MachineType = "t3.medium"
				c.Spec.NodePools[0].MachineType = "big"
			},
			want: []FieldError{
				{Field: "spec.controlPlane.machineType", Detail: `"t3.medium" is not a Docker machine type: use <cpu>x<memory> such as 1x2Gi or 500mx1Gi, or leave it empty for a machine that sees the whole host`},
				{Field: "spec.nodePools[0].machineType", Detail: `"big" is not a Docker machine type`},
			},
		},
		{
			name:   "docker, a machine type finer than a millicore",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].MachineType = "0.0005x1Gi" },
			want:   []FieldError{{Field: "spec.nodePools[0].machineType", Detail: `"0.0005x1Gi" is not a Docker machine type`}},
		},
		{
			name:   "docker, too little CPU",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].MachineType = "50mx1Gi" },
			want:   []FieldError{{Field: "spec.nodePools[1].machineType", Detail: "50mx1Gi offers 50m CPU: a Docker machine needs at least 100m to run its own pods"}},
		},
		{
			name:   "docker, too little memory",
			mutate: func(c *Cluster) { c.Spec.ControlPlane.MachineType = "1x256Mi" },
			want:   []FieldError{{Field: "spec.controlPlane.machineType", Detail: "1x256Mi offers 256Mi of memory: a Docker machine needs at least 512Mi to run its own pods"}},
		},
		{
			name: "a Docker machine type is checked only on Docker",
			mutate: func(c *Cluster) {
				awsProvider(c)
				c.Spec.NodePools[0].MachineType = "t3.large"
			},
		},
		{
			name:   "aws",
			mutate: func(c *Cluster) { awsProvider(c) },
		},
		{
			name:   "aws without region",
			mutate: func(c *Cluster) { awsProvider(c).Region = "" },
			want:   []FieldError{{Field: "spec.provider.aws.region", Detail: `required: set the AWS region, e.g. "eu-west-1"`}},
		},
		{
			name:   "aws region malformed",
			mutate: func(c *Cluster) { awsProvider(c).Region = "Ireland" },
			want:   []FieldError{{Field: "spec.provider.aws.region", Detail: `invalid region "Ireland"`}},
		},
		{
			name: "aws existing VPC",
			mutate: func(c *Cluster) {
				a := awsProvider(c)
				a.VPCID, a.SubnetIDs, a.AMI = "vpc-0a1b2c3d", []string{"subnet-0123456789abcdef0", "subnet-01234567"}, "ami-0123456789abcdef0"
			},
		},
		{
			name:   "aws VPC without subnets",
			mutate: func(c *Cluster) { awsProvider(c).VPCID = "vpc-0a1b2c3d" },
			want:   []FieldError{{Field: "spec.provider.aws.subnetIDs", Detail: "required when spec.provider.aws.vpcID is set"}},
		},
		{
			name:   "aws subnets without VPC",
			mutate: func(c *Cluster) { awsProvider(c).SubnetIDs = []string{"subnet-01234567"} },
			want:   []FieldError{{Field: "spec.provider.aws.vpcID", Detail: "required when spec.provider.aws.subnetIDs is set"}},
		},
		{
			name: "aws IDs malformed",
			mutate: func(c *Cluster) {
				a := awsProvider(c)
				a.VPCID, a.SubnetIDs, a.AMI = "0a1b2c3d", []string{"subnet-01234567", "subnet-0123"}, "debian"
			},
			want: []FieldError{
				{Field: "spec.provider.aws.vpcID", Detail: `invalid VPC ID "0a1b2c3d"`},
				{Field: "spec.provider.aws.subnetIDs[1]", Detail: `invalid subnet ID "subnet-0123"`},
				{Field: "spec.provider.aws.ami", Detail: `invalid AMI ID "debian"`},
			},
		},

		{
			name: "unprintable characters in free-form strings",
			mutate: func(c *Cluster) {
				c.Spec.Provider.Docker.NodeImage = "seed-node:v1.34.2\n"
				c.Spec.ControlPlane.MachineType = "large\u2028"
				c.Spec.NodePools[0].MachineType = "a\tb"
				c.Spec.Backup.Schedule = "@daily\u0085"
			},
			want: []FieldError{
				{Field: "spec.provider.docker.nodeImage", Detail: "contains U+000A, a control or invisible character: remove it"},
				{Field: "spec.controlPlane.machineType", Detail: "U+2028"},
				{Field: "spec.nodePools[0].machineType", Detail: "U+0009"},
				{Field: "spec.backup.schedule", Detail: "U+0085"},
			},
		},

		// spec.nodePools names
		{
			name:   "pool name missing",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].Name = "" },
			want:   []FieldError{{Field: "spec.nodePools[1].name", Detail: "required"}},
		},
		{
			name:   "pool name invalid",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].Name = "GPU" },
			want:   []FieldError{{Field: "spec.nodePools[1].name", Detail: `invalid pool name "GPU"`}},
		},
		{
			name:   "pool name duplicate",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].Name = "workers" },
			want:   []FieldError{{Field: "spec.nodePools[1].name", Detail: `duplicate pool name "workers": pool names must be unique`}},
		},
		{
			name:   "pool name reserved",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Name = ControlPlanePool },
			want:   []FieldError{{Field: "spec.nodePools[0].name", Detail: `"control-plane" is reserved`}},
		},
		{
			name: "pool name too long for machine names",
			mutate: func(c *Cluster) {
				c.Metadata.Name = strings.Repeat("c", 40)
				c.Spec.NodePools[0].Name = strings.Repeat("p", 16)
			},
			want: []FieldError{{Field: "spec.nodePools[0].name", Detail: "use at most 15 characters"}},
		},
		{
			name: "pool name as long as machine names allow",
			mutate: func(c *Cluster) {
				c.Metadata.Name = strings.Repeat("c", 40)
				c.Spec.NodePools[0].Name = strings.Repeat("p", 15)
			},
		},

		// spec.nodePools replicas
		{
			name:   "replicas negative",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Replicas = -1 },
			want:   []FieldError{{Field: "spec.nodePools[0].replicas", Detail: "-1 is negative: must be 0 or more"}},
		},
		{
			name:   "replicas absurd",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Replicas = 1001 },
			want:   []FieldError{{Field: "spec.nodePools[0].replicas", Detail: "1001 is too many: must be at most 1000"}},
		},
		{
			name:   "replicas zero and at the limit",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Replicas = 0; c.Spec.NodePools[1].Replicas = 1000 },
		},
		{
			name: "minReplicas negative",
			mutate: func(c *Cluster) {
				c.Spec.NodePools[0].Replicas = 0
				c.Spec.NodePools[0].MinReplicas, c.Spec.NodePools[0].MaxReplicas = ptr[int32](-2), ptr[int32](3)
			},
			want: []FieldError{{Field: "spec.nodePools[0].minReplicas", Detail: "must be 0 or more"}},
		},
		{
			name: "maxReplicas negative",
			mutate: func(c *Cluster) {
				c.Spec.NodePools[0].Replicas = 0
				c.Spec.NodePools[0].MinReplicas, c.Spec.NodePools[0].MaxReplicas = ptr[int32](0), ptr[int32](-2)
			},
			want: []FieldError{{Field: "spec.nodePools[0].maxReplicas", Detail: "must be 0 or more"}},
		},
		{
			name: "min above max",
			mutate: func(c *Cluster) {
				c.Spec.NodePools[0].Replicas = 0
				c.Spec.NodePools[0].MinReplicas, c.Spec.NodePools[0].MaxReplicas = ptr[int32](5), ptr[int32](3)
			},
			want: []FieldError{{Field: "spec.nodePools[0].minReplicas", Detail: "5 is greater than maxReplicas 3"}},
		},
		{
			name:   "minReplicas alone",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].MinReplicas = ptr[int32](1) },
			want:   []FieldError{{Field: "spec.nodePools[0].maxReplicas", Detail: "required with minReplicas: set maxReplicas too"}},
		},
		{
			name:   "maxReplicas alone",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].MaxReplicas = ptr[int32](4) },
			want:   []FieldError{{Field: "spec.nodePools[0].minReplicas", Detail: "required with maxReplicas: set minReplicas too"}},
		},
		{
			name: "replicas on an autoscaled pool",
			mutate: func(c *Cluster) {
				c.Spec.NodePools[0].MinReplicas, c.Spec.NodePools[0].MaxReplicas = ptr[int32](1), ptr[int32](3)
			},
			want: []FieldError{{Field: "spec.nodePools[0].replicas", Detail: "2 is set on a pool with minReplicas and maxReplicas: the agent sizes an autoscaled pool itself"}},
		},
		{
			name: "autoscaled pool",
			mutate: func(c *Cluster) {
				c.Spec.NodePools[0].Replicas = 0
				c.Spec.NodePools[0].MinReplicas, c.Spec.NodePools[0].MaxReplicas = ptr[int32](0), ptr[int32](3)
				c.Spec.Autoscaling.ScaleDownUnneededTime = NewDuration(30 * time.Second)
			},
		},
		{
			name:   "autoscaling settings without an autoscaled pool",
			mutate: func(c *Cluster) { c.Spec.Autoscaling.ScaleDownDelayAfterAdd = NewDuration(time.Minute) },
			want:   []FieldError{{Field: "spec.autoscaling", Detail: "no pool is autoscaled, so these settings would do nothing"}},
		},
		{
			name: "autoscaling threshold out of range",
			mutate: func(c *Cluster) {
				c.Spec.NodePools[0].Replicas = 0
				c.Spec.NodePools[0].MinReplicas, c.Spec.NodePools[0].MaxReplicas = ptr[int32](0), ptr[int32](3)
				c.Spec.Autoscaling.ScaleDownUtilizationThreshold = ptr[int32](150)
			},
			want: []FieldError{{Field: "spec.autoscaling.scaleDownUtilizationThreshold", Detail: "150 is not a percentage from 1 to 100"}},
		},

		// spec.nodePools versions
		{
			name:   "pool version malformed",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].KubernetesVersion = "latest" },
			want:   []FieldError{{Field: "spec.nodePools[0].kubernetesVersion", Detail: `invalid Kubernetes version "latest"`}},
		},
		{
			name:   "pool version newer than the cluster",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].KubernetesVersion = "v1.34.3" },
			want:   []FieldError{{Field: "spec.nodePools[0].kubernetesVersion", Detail: "v1.34.3 is newer than spec.kubernetesVersion v1.34.2"}},
		},
		{
			name:   "pool version three minors older",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].KubernetesVersion = "v1.31.0" },
		},
		{
			name:   "pool version four minors older",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].KubernetesVersion = "v1.30.14" },
			want:   []FieldError{{Field: "spec.nodePools[0].kubernetesVersion", Detail: "more than 3 minor versions older than spec.kubernetesVersion v1.34.2: use v1.31 or later"}},
		},
		{
			name:   "pool version unsupported",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].KubernetesVersion = "v1.29.0" },
			want:   []FieldError{{Field: "spec.nodePools[0].kubernetesVersion", Detail: "not supported"}},
		},

		// spec.nodePools labels
		{
			name:   "label key invalid",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Labels["bad key"] = "x" },
			want:   []FieldError{{Field: "spec.nodePools[0].labels[bad key]", Detail: `invalid label key "bad key"`}},
		},
		{
			name:   "label value invalid",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Labels["tier"] = "a b" },
			want:   []FieldError{{Field: "spec.nodePools[0].labels[tier]", Detail: `invalid label value "a b"`}},
		},
		{
			name:   "label value too long",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Labels["tier"] = strings.Repeat("a", 64) },
			want:   []FieldError{{Field: "spec.nodePools[0].labels[tier]", Detail: "must be no more than 63"}},
		},
		{
			name:   "label key reserved",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Labels["seed.dev/pool"] = "x" },
			want:   []FieldError{{Field: "spec.nodePools[0].labels[seed.dev/pool]", Detail: "uses the seed.dev/ prefix, which Seed reserves"}},
		},
		{
			name:   "label key in a reserved subdomain",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Labels["pool.seed.dev/x"] = "x" },
			want:   []FieldError{{Field: "spec.nodePools[0].labels[pool.seed.dev/x]", Detail: "reserves"}},
		},
		{
			name:   "label key merely containing seed.dev",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Labels["notseed.dev/x"] = "x" },
		},
		{
			name:   "label key the kubelet may not set (node-role)",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Labels["node-role.kubernetes.io/worker"] = "" },
			want:   []FieldError{{Field: "spec.nodePools[0].labels[node-role.kubernetes.io/worker]", Detail: "the kubelet may not set on its own Node (NodeRestriction)"}},
		},
		{
			name:   "label key in the k8s.io domain",
			mutate: func(c *Cluster) { c.Spec.NodePools[0].Labels["example.k8s.io/x"] = "y" },
			want:   []FieldError{{Field: "spec.nodePools[0].labels[example.k8s.io/x]", Detail: "use your own prefix"}},
		},
		{
			name: "label keys the kubelet may set",
			mutate: func(c *Cluster) {
				l := c.Spec.NodePools[0].Labels
				l["node.kubernetes.io/role"] = "batch"
				l["kubelet.kubernetes.io/x"] = "y"
				l["topology.kubernetes.io/zone"] = "z1"
			},
		},

		// spec.nodePools taints
		{
			name:   "taint key missing",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].Taints[0].Key = "" },
			want:   []FieldError{{Field: "spec.nodePools[1].taints[0].key", Detail: "required"}},
		},
		{
			name:   "taint key invalid",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].Taints[0].Key = "-gpu" },
			want:   []FieldError{{Field: "spec.nodePools[1].taints[0].key", Detail: `invalid taint key "-gpu"`}},
		},
		{
			name:   "taint key reserved",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].Taints[0].Key = "seed.dev/draining" },
			want:   []FieldError{{Field: "spec.nodePools[1].taints[0].key", Detail: "uses the seed.dev/ prefix"}},
		},
		{
			name:   "taint value invalid",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].Taints[0].Value = "a/b" },
			want:   []FieldError{{Field: "spec.nodePools[1].taints[0].value", Detail: `invalid taint value "a/b"`}},
		},
		{
			name:   "taint effect invalid",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].Taints[0].Effect = "noschedule" },
			want:   []FieldError{{Field: "spec.nodePools[1].taints[0].effect", Detail: `invalid taint effect "noschedule": must be one of NoSchedule, PreferNoSchedule, NoExecute`}},
		},
		{
			name:   "taint effect missing",
			mutate: func(c *Cluster) { c.Spec.NodePools[1].Taints[0].Effect = "" },
			want:   []FieldError{{Field: "spec.nodePools[1].taints[0].effect", Detail: `invalid taint effect ""`}},
		},
		{
			name: "taint duplicate",
			mutate: func(c *Cluster) {
				c.Spec.NodePools[1].Taints = append(c.Spec.NodePools[1].Taints, Taint{Key: "nvidia.com/gpu", Value: "x", Effect: "NoSchedule"})
			},
			want: []FieldError{{Field: "spec.nodePools[1].taints[1]", Detail: "duplicate taint nvidia.com/gpu:NoSchedule"}},
		},
		{
			name: "same taint key with another effect",
			mutate: func(c *Cluster) {
				c.Spec.NodePools[1].Taints = append(c.Spec.NodePools[1].Taints, Taint{Key: "nvidia.com/gpu", Effect: "NoExecute"})
			},
		},

		// spec.health
		{
			name:   "duration malformed",
			mutate: func(c *Cluster) { c.Spec.Health.NodeStartupTimeout = mustDecodeDuration(t, `"10 minutes"`) },
			want:   []FieldError{{Field: "spec.health.nodeStartupTimeout", Detail: `invalid duration "10 minutes": write a Go duration such as 90s`}},
		},
		{
			name:   "duration negative",
			mutate: func(c *Cluster) { c.Spec.Health.NodeNotReadyTimeout = mustDecodeDuration(t, `"-5m"`) },
			want:   []FieldError{{Field: "spec.health.nodeNotReadyTimeout", Detail: `invalid duration "-5m"`}},
		},
		{
			name:   "duration zero",
			mutate: func(c *Cluster) { c.Spec.Health.NodeNotReadyTimeout = NewDuration(0) },
			want:   []FieldError{{Field: "spec.health.nodeNotReadyTimeout", Detail: "must be longer than 0s"}},
		},
		{
			name:   "maxUnhealthy malformed",
			mutate: func(c *Cluster) { c.Spec.Health.MaxUnhealthy = mustDecodeIntOrPercent(t, `"150%"`) },
			want:   []FieldError{{Field: "spec.health.maxUnhealthy", Detail: `invalid value "150%"`}},
		},
		{
			name:   "maxUnhealthy count",
			mutate: func(c *Cluster) { c.Spec.Health.MaxUnhealthy = NewCount(0) },
		},

		// spec.rollout
		{
			name:   "maxSurge negative",
			mutate: func(c *Cluster) { c.Spec.Rollout.MaxSurge = ptr[int32](-1) },
			want:   []FieldError{{Field: "spec.rollout.maxSurge", Detail: "-1 is negative: must be 0 or more"}},
		},
		{
			name:   "maxUnavailable negative",
			mutate: func(c *Cluster) { c.Spec.Rollout.MaxUnavailable = ptr[int32](-1) },
			want:   []FieldError{{Field: "spec.rollout.maxUnavailable", Detail: "-1 is negative: must be 0 or more"}},
		},
		{
			name:   "maxSurge and maxUnavailable both zero",
			mutate: func(c *Cluster) { c.Spec.Rollout.MaxSurge = ptr[int32](0) },
			want:   []FieldError{{Field: "spec.rollout.maxSurge", Detail: "maxSurge and maxUnavailable are both 0"}},
		},
		{
			name: "replace in place",
			mutate: func(c *Cluster) {
				c.Spec.Rollout.MaxSurge, c.Spec.Rollout.MaxUnavailable = ptr[int32](0), ptr[int32](1)
			},
		},
		{
			name:   "drainTimeout zero",
			mutate: func(c *Cluster) { c.Spec.Rollout.DrainTimeout = NewDuration(0) },
			want:   []FieldError{{Field: "spec.rollout.drainTimeout", Detail: "must be longer than 0s"}},
		},
		{
			name:   "drainTimeout malformed",
			mutate: func(c *Cluster) { c.Spec.Rollout.DrainTimeout = mustDecodeDuration(t, `600`) },
			want:   []FieldError{{Field: "spec.rollout.drainTimeout", Detail: "invalid duration"}},
		},

		// spec.backup
		{
			name:   "backups enabled, with Seed's location named",
			mutate: func(c *Cluster) { c.Spec.Backup = BackupSpec{Enabled: true, StorageLocation: "default"} },
		},
		{
			name:   "backups enabled with a schedule",
			mutate: func(c *Cluster) { c.Spec.Backup = BackupSpec{Enabled: true, Schedule: "@daily"} },
		},
		{
			name:   "backups enabled with a schedule that is not cron",
			mutate: func(c *Cluster) { c.Spec.Backup = BackupSpec{Enabled: true, Schedule: "every day"} },
			want:   []FieldError{{Field: "spec.backup.schedule", Detail: `"every day" is not a cron schedule`}},
		},
		{
			name:   "a storage location of the user's own, which Seed would not use",
			mutate: func(c *Cluster) { c.Spec.Backup = BackupSpec{Enabled: true, StorageLocation: "offsite"} },
			want: []FieldError{{Field: "spec.backup.storageLocation",
				Detail: `"offsite": Seed keeps one BackupStorageLocation, "default", pointed at spec.backup.store (or the provider's store): remove storageLocation`}},
		},
		{
			name: "backup settings written ahead, disabled",
			mutate: func(c *Cluster) {
				c.Spec.Backup = BackupSpec{StorageLocation: "default", Schedule: "@daily", BeforeUpgrade: ptr(true)}
			},
		},
		{
			name: "a store of the user's, written ahead",
			mutate: func(c *Cluster) {
				c.Spec.Backup = BackupSpec{MaxAge: NewDuration(time.Hour), Store: &BackupStoreSpec{
					Endpoint: "https://s3.eu-west-1.amazonaws.com", Bucket: "lab-backups", Region: "eu-west-1", CredentialsSecret: "s3-keys"}}
			},
		},
		{
			name: "a store with every field wrong names each one",
			mutate: func(c *Cluster) {
				c.Spec.Backup.Store = &BackupStoreSpec{Endpoint: "s3.example.com", Bucket: "Lab_Backups", Region: "EU West", CredentialsSecret: "S3 keys"}
			},
			want: []FieldError{
				{Field: "spec.backup.store.endpoint", Detail: `"s3.example.com" is not an http or https URL: write it with its scheme, such as https://s3.example.com`},
				{Field: "spec.backup.store.bucket", Detail: `"Lab_Backups" is not a bucket name`},
				{Field: "spec.backup.store.region", Detail: `"EU West" is not a region name`},
				{Field: "spec.backup.store.credentialsSecret", Detail: `"S3 keys" is not a Secret name`},
			},
		},
		{
			name:   "a store with nothing in it says what each field is",
			mutate: func(c *Cluster) { c.Spec.Backup.Store = &BackupStoreSpec{} },
			want: []FieldError{
				{Field: "spec.backup.store.endpoint", Detail: "required: the store's URL"},
				{Field: "spec.backup.store.bucket", Detail: "required: the bucket"},
				{Field: "spec.backup.store.credentialsSecret", Detail: "required: a Secret in the agent's namespace"},
			},
		},
		{
			name: "a store URL with a path or credentials in it",
			mutate: func(c *Cluster) {
				c.Spec.Backup.Store = &BackupStoreSpec{Endpoint: "http://key:secret@10.0.0.5:9000/lab-backups", Bucket: "lab-backups", CredentialsSecret: "s3-keys"}
			},
			want: []FieldError{{Field: "spec.backup.store.endpoint", Detail: "without credentials, path or query"}},
		},
		{
			// The AWS provider keeps a bucket of the cluster's own.
			name: "backups enabled on AWS without a store",
			mutate: func(c *Cluster) {
				awsProvider(c)
				c.Spec.Backup.Enabled = true
			},
		},
		{
			name:   "maxAge not positive",
			mutate: func(c *Cluster) { c.Spec.Backup.MaxAge = NewDuration(0) },
			want:   []FieldError{{Field: "spec.backup.maxAge", Detail: "must be longer than 0s"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCluster()
			if tt.mutate != nil {
				tt.mutate(c)
			}
			wantProblems(t, Validate(c, ValidateOptions{RunningVersion: tt.running}), tt.want)
		})
	}
}

func mustDecodeDuration(t *testing.T, js string) *Duration {
	t.Helper()
	d := &Duration{}
	if err := d.UnmarshalJSON([]byte(js)); err != nil {
		t.Fatal(err)
	}
	return d
}

func mustDecodeIntOrPercent(t *testing.T, js string) *IntOrPercent {
	t.Helper()
	v := &IntOrPercent{}
	if err := v.UnmarshalJSON([]byte(js)); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validCluster()
	c.Kind = "Machine"
	c.Metadata.Name = ""
	c.Spec.Provider = ProviderSpec{}
	c.Spec.NodePools[0].Replicas = -3
	c.Spec.NodePools[1].Name = "workers"
	c.Spec.NodePools[1].Taints[0].Effect = "Never"
	c.Spec.Health.NodeStartupTimeout = NewDuration(0)
	c.Spec.Rollout.MaxSurge = ptr[int32](0)
	c.Spec.Backup.Enabled = true

	err := Validate(c, ValidateOptions{})
	wantProblems(t, err, []FieldError{
		{Field: "kind", Detail: "must be"},
		{Field: "metadata.name", Detail: "required"},
		{Field: "spec.provider", Detail: "set exactly one"},
		{Field: "spec.nodePools[0].replicas", Detail: "negative"},
		{Field: "spec.nodePools[1].name", Detail: "duplicate pool name"},
		{Field: "spec.nodePools[1].taints[0].effect", Detail: "invalid taint effect"},
		{Field: "spec.health.nodeStartupTimeout", Detail: "longer than 0s"},
		{Field: "spec.rollout.maxSurge", Detail: "both 0"},
	})
	if got := strings.Count(err.Error(), "\n") + 1; got != 8 {
		t.Errorf("Error() has %d lines, want one per problem (8):\n%v", got, err)
	}
}

func TestValidateOptions(t *testing.T) {
	err := Validate(validCluster(), ValidateOptions{RunningVersion: "one.two"})
	if err == nil || IsInvalidSpec(err) {
		t.Errorf("an unparsable running version must be a plain error, got %v", err)
	}
	if err := Validate(nil, ValidateOptions{}); !IsInvalidSpec(err) {
		t.Errorf("Validate(nil) = %v, want an invalid spec", err)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts ValidateOptions
		want []FieldError
	}{
		{
			name: "defaults are applied before validation",
			in:   "metadata: {name: a}\nspec: {provider: {docker: {}}}\n",
		},
		{
			name: "decode and validation problems together",
			in: "apiVersion: seed.dev/v1beta1\nmetadata: {name: a}\nspec:\n  provider: {docker: {}}\n" +
				"  nodePools:\n  - name: a\n    replica: 3\n  - name: a\n    replicas: -1\n  health: {nodeStartupTimeout: soon}\n",
			want: []FieldError{
				{Field: "spec.nodePools[0].replica", Detail: `did you mean "replicas"?`},
				{Field: "apiVersion", Detail: `unsupported apiVersion "seed.dev/v1beta1"`},
				{Field: "spec.nodePools[1].name", Detail: "duplicate pool name"},
				{Field: "spec.nodePools[1].replicas", Detail: "negative"},
				{Field: "spec.health.nodeStartupTimeout", Detail: `invalid duration "soon"`},
			},
		},
		{
			name: "a misspelt field does not also count as missing",
			in:   "metadata: {nmae: a}\nspec: {provider: {docker: {}}, nodePools: [{nme: x}]}\n",
			want: []FieldError{
				{Field: "metadata.nmae", Detail: `did you mean "name"?`},
				{Field: "spec.nodePools[0].nme", Detail: `did you mean "name"?`},
			},
		},
		{
			name: "a misspelt field next to the right one",
			in:   "metadata: {name: A, nmae: a}\nspec: {provider: {docker: {}}}\n",
			want: []FieldError{
				{Field: "metadata.nmae", Detail: `did you mean "name"?`},
				{Field: "metadata.name", Detail: `invalid name "A"`},
			},
		},
		{
			name: "a mistyped value is reported once",
			in:   "metadata: {name: a}\nspec:\n  provider: docker\n  nodePools: [{name: a, replicas: many}, 7]\n",
			want: []FieldError{
				{Field: "spec.provider", Detail: `must be a mapping of fields, not the string "docker"`},
				{Field: "spec.nodePools[0].replicas", Detail: "must be a whole number"},
				{Field: "spec.nodePools[1]", Detail: "must be a mapping of fields, not the number 7"},
			},
		},
		{
			name: "a document that cannot be read stops there",
			in:   "metadata: {name: a\n",
			want: []FieldError{{Detail: "invalid YAML"}},
		},
		{
			name: "a backup schedule",
			in:   "metadata: {name: a}\nspec: {provider: {docker: {}}, backup: {enabled: true, schedule: '@daily'}}\n",
		},
		{
			name: "a changed provider field",
			in:   "metadata: {name: lab}\nspec: {provider: {docker: {apiServerPort: 6444}}}\n",
			opts: ValidateOptions{Previous: validCluster()},
			want: []FieldError{{Field: "spec.provider.docker.apiServerPort", Detail: "immutable once the cluster exists: remove it"}},
		},
		{
			name: "a changed provider field mistyped is reported once",
			in:   "metadata: {name: lab}\nspec: {provider: {docker: {privileged: \"true\"}}}\n",
			opts: ValidateOptions{Previous: validCluster()},
			want: []FieldError{{Field: "spec.provider.docker.privileged", Detail: "must be true or false"}},
		},
		{
			name: "running version",
			in:   "metadata: {name: a}\nspec: {kubernetesVersion: v1.36.0, provider: {docker: {}}}\n",
			opts: ValidateOptions{RunningVersion: "v1.34.5"},
			want: []FieldError{{Field: "spec.kubernetesVersion", Detail: "cannot skip minor versions"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load([]byte(tt.in), tt.opts)
			wantProblems(t, err, tt.want)
			if err == nil && c.Spec.Rollout.DrainTimeout == nil {
				t.Errorf("Load did not apply defaults")
			}
			if err != nil && c != nil {
				t.Errorf("Load returned a cluster along with an error")
			}
		})
	}
}

func TestLoadTestdata(t *testing.T) {
	for _, file := range []string{"docker-minimal.yaml", "docker-full.yaml", "aws.yaml", "docker.json"} {
		t.Run(file, func(t *testing.T) {
			c, err := Load(readTestdata(t, file), ValidateOptions{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Spec.Health.NodeNotReadyTimeout == nil || c.Spec.Health.NodeNotReadyTimeout.Duration <= 0 || c.Spec.Health.NodeNotReadyTimeout.Duration > time.Hour {
				t.Errorf("nodeNotReadyTimeout not defaulted sensibly: %v", c.Spec.Health.NodeNotReadyTimeout)
			}
			for _, p := range c.Spec.NodePools {
				if p.KubernetesVersion == "" {
					t.Errorf("pool %s has no version after defaulting", p.Name)
				}
			}
		})
	}
}

// awsCluster is validCluster on AWS with every provider field set, so that a
// row can change any one of them.
func awsCluster() *Cluster {
	c := validCluster()
	c.Spec.Provider = ProviderSpec{AWS: &AWSProviderSpec{
		Region:            "eu-west-1",
		VPCID:             "vpc-0a1b2c3d",
		SubnetIDs:         []string{"subnet-01234567", "subnet-89abcdef"},
		AvailabilityZones: []string{"eu-west-1a", "eu-west-1b"},
		AMI:               "ami-0123456789abcdef0",
		SSHKeyName:        "ops",
		AgentImage:        "registry.example.com/seed-agent:v1",
		CredentialsSecret: "aws-credentials",
	}}
	return c
}

func TestValidateAgainstPrevious(t *testing.T) {
	const (
		newCluster = "; to use a different value, create a new cluster"
		moveIt     = "; to move the cluster to another provider, create a new cluster"
	)
	tests := []struct {
		name     string
		previous func() *Cluster
		mutate   func(c *Cluster)
		want     []FieldError
	}{
		{name: "unchanged docker", previous: validCluster},
		{name: "unchanged aws", previous: awsCluster},
		{
			name:     "what may change still may",
			previous: validCluster,
			mutate: func(c *Cluster) {
				c.Spec.KubernetesVersion = "v1.35.0"
				c.Spec.Paused = true
				c.Spec.NodePools = append(c.Spec.NodePools, NodePool{Name: "batch", Replicas: 4, KubernetesVersion: "v1.35.0"})
				c.Spec.NodePools[0].Replicas = 7
				c.Spec.Health.NodeNotReadyTimeout = NewDuration(time.Minute)
				c.Spec.Rollout.MaxSurge = ptr[int32](3)
			},
		},
		{
			name: "an empty list is the same as none",
			previous: func() *Cluster {
				c := validCluster()
				awsProvider(c)
				return c
			},
			mutate: func(c *Cluster) { c.Spec.Provider.AWS.AvailabilityZones = []string{} },
		},

		// metadata.name
		{
			name:     "renamed",
			previous: validCluster,
			mutate:   func(c *Cluster) { c.Metadata.Name = "lab2" },
			want:     []FieldError{{Field: "metadata.name", Detail: `immutable once the cluster exists, because its machines and cloud resources are named and tagged with it: set it back to "lab"; to rename the cluster, create a new cluster`}},
		},
		{
			name:     "renamed to something invalid says only to set it back",
			previous: validCluster,
			mutate:   func(c *Cluster) { c.Metadata.Name = "" },
			want:     []FieldError{{Field: "metadata.name", Detail: `set it back to "lab"`}},
		},

		// switching provider
		{
			name:     "docker to aws",
			previous: validCluster,
			mutate:   func(c *Cluster) { awsProvider(c) },
			want:     []FieldError{{Field: "spec.provider.docker", Detail: "immutable once the cluster exists, and the cluster runs on docker: restore spec.provider.docker as it was and remove spec.provider.aws" + moveIt}},
		},
		{
			name:     "aws to docker",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider = ProviderSpec{Docker: &DockerProviderSpec{}} },
			want:     []FieldError{{Field: "spec.provider.aws", Detail: "immutable once the cluster exists, and the cluster runs on aws: restore spec.provider.aws as it was and remove spec.provider.docker" + moveIt}},
		},
		{
			name:     "docker to an invalid aws reports only the switch",
			previous: validCluster,
			mutate:   func(c *Cluster) { awsProvider(c).Region = "Ireland" },
			want:     []FieldError{{Field: "spec.provider.docker", Detail: "remove spec.provider.aws"}},
		},
		{
			name:     "provider removed",
			previous: validCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider = ProviderSpec{} },
			want:     []FieldError{{Field: "spec.provider.docker", Detail: "immutable once the cluster exists, and the cluster runs on docker: restore spec.provider.docker as it was" + moveIt}},
		},
		{
			name:     "a second provider added",
			previous: validCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS = &AWSProviderSpec{Region: "eu-west-1"} },
			want:     []FieldError{{Field: "spec.provider", Detail: "both docker and aws are set"}},
		},
		{
			name:     "a second provider added and the first changed",
			previous: validCluster,
			mutate: func(c *Cluster) {
				c.Spec.Provider.AWS = &AWSProviderSpec{Region: "eu-west-1"}
				c.Spec.Provider.Docker.Privileged = true
			},
			want: []FieldError{
				{Field: "spec.provider.docker.privileged", Detail: "remove it"},
				{Field: "spec.provider", Detail: "both docker and aws are set"},
			},
		},

		// docker settings
		{
			name:     "docker nodeImage set",
			previous: validCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.Docker.NodeImage = "seed-node:dev" },
			want:     []FieldError{{Field: "spec.provider.docker.nodeImage", Detail: "immutable once the cluster exists: remove it" + newCluster}},
		},
		{
			name: "docker nodeImage changed",
			previous: func() *Cluster {
				c := validCluster()
				c.Spec.Provider.Docker.NodeImage = "seed-node:v1.34.2"
				return c
			},
			mutate: func(c *Cluster) { c.Spec.Provider.Docker.NodeImage = "seed-node:dev" },
			want:   []FieldError{{Field: "spec.provider.docker.nodeImage", Detail: `immutable once the cluster exists: set it back to "seed-node:v1.34.2"` + newCluster}},
		},
		{
			name:     "docker privileged",
			previous: validCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.Docker.Privileged = true },
			want:     []FieldError{{Field: "spec.provider.docker.privileged", Detail: "immutable once the cluster exists: remove it" + newCluster}},
		},
		{
			name: "docker apiServerPort changed to an invalid port reports only the change",
			previous: func() *Cluster {
				c := validCluster()
				c.Spec.Provider.Docker.APIServerPort = 6443
				return c
			},
			mutate: func(c *Cluster) { c.Spec.Provider.Docker.APIServerPort = 70000 },
			want:   []FieldError{{Field: "spec.provider.docker.apiServerPort", Detail: "immutable once the cluster exists: set it back to 6443" + newCluster}},
		},

		// aws settings, each on its own
		{
			name:     "aws region",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS.Region = "us-east-1" },
			want:     []FieldError{{Field: "spec.provider.aws.region", Detail: `immutable once the cluster exists: set it back to "eu-west-1"` + newCluster}},
		},
		{
			name:     "aws vpcID",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS.VPCID = "vpc-0f0f0f0f" },
			want:     []FieldError{{Field: "spec.provider.aws.vpcID", Detail: `set it back to "vpc-0a1b2c3d"`}},
		},
		{
			name:     "aws subnets reordered",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS.SubnetIDs = []string{"subnet-89abcdef", "subnet-01234567"} },
			want:     []FieldError{{Field: "spec.provider.aws.subnetIDs", Detail: `immutable once the cluster exists: set it back to ["subnet-01234567","subnet-89abcdef"]` + newCluster}},
		},
		{
			name:     "aws subnet malformed reports only the change",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS.SubnetIDs[1] = "subnet-x" },
			want:     []FieldError{{Field: "spec.provider.aws.subnetIDs", Detail: "set it back to"}},
		},
		{
			name:     "aws availabilityZones",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS.AvailabilityZones = nil },
			want:     []FieldError{{Field: "spec.provider.aws.availabilityZones", Detail: `set it back to ["eu-west-1a","eu-west-1b"]`}},
		},
		{
			name:     "aws ami",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS.AMI = "" },
			want:     []FieldError{{Field: "spec.provider.aws.ami", Detail: `set it back to "ami-0123456789abcdef0"`}},
		},
		{
			name:     "aws sshKeyName",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS.SSHKeyName = "debug" },
			want:     []FieldError{{Field: "spec.provider.aws.sshKeyName", Detail: `set it back to "ops"`}},
		},
		{
			name:     "aws agentImage",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS.AgentImage = "registry.example.com/seed-agent:v2" },
			want:     []FieldError{{Field: "spec.provider.aws.agentImage", Detail: `set it back to "registry.example.com/seed-agent:v1"`}},
		},
		{
			name:     "aws credentialsSecret",
			previous: awsCluster,
			mutate:   func(c *Cluster) { c.Spec.Provider.AWS.CredentialsSecret = "" },
			want:     []FieldError{{Field: "spec.provider.aws.credentialsSecret", Detail: `set it back to "aws-credentials"`}},
		},
		{
			name:     "every change is reported, other problems too",
			previous: awsCluster,
			mutate: func(c *Cluster) {
				c.Metadata.Name = "prod"
				c.Spec.Provider.AWS.Region = "us-east-1"
				c.Spec.Provider.AWS.SSHKeyName = ""
				c.Spec.NodePools[0].Replicas = -1
			},
			want: []FieldError{
				{Field: "metadata.name", Detail: "immutable"},
				{Field: "spec.provider.aws.region", Detail: "immutable"},
				{Field: "spec.provider.aws.sshKeyName", Detail: "immutable"},
				{Field: "spec.nodePools[0].replicas", Detail: "negative"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			previous := tt.previous()
			c := tt.previous()
			if tt.mutate != nil {
				tt.mutate(c)
			}
			wantProblems(t, Validate(c, ValidateOptions{Previous: previous}), tt.want)
		})
	}
}

// A field the simulated provider does not have (a Docker one, or a typo) is
// rejected by name, with what it allows.
func TestSimulatedProviderFieldsAreChecked(t *testing.T) {
	_, err := Load([]byte(`apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata: {name: a}
spec:
  provider:
    simulated: {registrationDelai: 1s, nodeImage: x}
`), ValidateOptions{})
	for _, want := range []string{
		`spec.provider.simulated.registrationDelai: unknown field; did you mean "registrationDelay"?`,
		`spec.provider.simulated.nodeImage: unknown field; the fields allowed here are registrationDelay`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to say %q", err, want)
		}
	}
}

func TestDockerMachineType(t *testing.T) {
	tests := []struct {
		name     string
		milliCPU int64
		memory   int64
		ok       bool
	}{
		{name: "1x2Gi", milliCPU: 1000, memory: 2 << 30, ok: true},
		{name: "500mx1Gi", milliCPU: 500, memory: 1 << 30, ok: true},
		{name: "1.5x1500M", milliCPU: 1500, memory: 1500e6, ok: true},
		{name: "2x4Gi", milliCPU: 2000, memory: 4 << 30, ok: true},
		{name: ""},
		{name: "default"},
		{name: "1x"},
		{name: "x1Gi"},
		{name: "1x2Gi3"},
		{name: "0.0001x1Gi"},
		{name: "1x1.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem, ok := DockerMachineType(tt.name)
			if cpu != tt.milliCPU || mem != tt.memory || ok != tt.ok {
				t.Errorf("DockerMachineType(%q) = %d, %d, %v; want %d, %d, %v", tt.name, cpu, mem, ok, tt.milliCPU, tt.memory, tt.ok)
			}
		})
	}
}
