package v1alpha1

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/version"
)

// Limits the spec is checked against.
const (
	// OldestKubernetesMinor and NewestKubernetesMinor bound the v1.MINOR
	// releases Seed builds node images and kubeadm configurations for.
	OldestKubernetesMinor = 30
	NewestKubernetesMinor = 36
	// MaxPoolVersionSkew is how many minor versions a pool's kubelets may
	// trail the control plane; Kubernetes supports three.
	MaxPoolVersionSkew = 3
	// MaxReplicas bounds a pool; more than this is far more likely a typo
	// than a plan, and would create that many machines.
	MaxReplicas = 1000
	// MaxClusterNameLength leaves room in a 63-character machine name
	// (cluster-pool-suffix) for the pool name and a random suffix.
	MaxClusterNameLength = 40
	// ReservedLabelDomain prefixes the labels and taints Seed puts on
	// machines itself; users may not set them.
	ReservedLabelDomain = "seed.dev"
)

// maxMachineNamePrefix is how long "<cluster>-<pool>" may be: the agent
// names machines "<cluster>-<pool>-<5 random>" and cuts longer prefixes,
// which could make two pools' machines look alike.
const maxMachineNamePrefix = 56

// taintEffects are the effects a Node taint may have.
var taintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

// awsRegionPattern matches region names such as eu-west-1, us-gov-east-1.
var awsRegionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// ValidateOptions is what Validate needs to know beyond the spec itself.
type ValidateOptions struct {
	// RunningVersion is the Kubernetes version the cluster runs now, as its
	// API server reports it; "" for a cluster that does not exist yet. With
	// it, Validate refuses changes of spec.kubernetesVersion that kubeadm
	// cannot carry out.
	RunningVersion string
	// Previous is the last valid spec of the cluster, as Load returned it;
	// nil for a cluster that does not exist yet. With it, Validate refuses
	// edits of what an existing cluster cannot change: metadata.name and
	// spec.provider (see immutableChanges).
	Previous *Cluster
}

// Load decodes, defaults and validates a spec, and reports every problem,
// decoding and validation alike, in one *InvalidSpecError.
func Load(data []byte, opts ValidateOptions) (*Cluster, error) {
	r := decode(data)
	if r.cluster == nil {
		return nil, r.errs.err()
	}
	SetDefaults(r.cluster)
	problems := r.errs
	if err := Validate(r.cluster, opts); err != nil {
		var invalid *InvalidSpecError
		if !errors.As(err, &invalid) {
			return nil, err
		}
		for _, fe := range invalid.Errors {
			if !withinAny(fe.Field, r.shadowed) {
				problems = append(problems, fe)
			}
		}
	}
	if err := problems.err(); err != nil {
		return nil, err
	}
	return r.cluster, nil
}

// withinAny reports whether field is one of paths or inside one of them.
func withinAny(field string, paths []string) bool {
	if field == "" {
		return false
	}
	for _, s := range paths {
		if within(field, s) {
			return true
		}
	}
	return false
}

// Validate checks a defaulted spec (see SetDefaults) and returns an
// *InvalidSpecError listing every problem, or nil. An unparsable
// opts.RunningVersion is the caller's mistake, not the spec's, and comes back
// as a plain error.
func Validate(c *Cluster, opts ValidateOptions) error {
	var running *version.Version
	if opts.RunningVersion != "" {
		v, err := version.ParseSemantic(opts.RunningVersion)
		if err != nil {
			return fmt.Errorf("parsing the running Kubernetes version %q: %w", opts.RunningVersion, err)
		}
		running = v
	}
	if c == nil {
		return &InvalidSpecError{Errors: []FieldError{{Detail: "no cluster spec"}}}
	}

	var frozen errorList
	var covered []string
	if opts.Previous != nil {
		frozen, covered = immutableChanges(opts.Previous, c)
	}

	var errs errorList
	if c.APIVersion != APIVersion {
		errs.add("apiVersion", fmt.Sprintf("unsupported apiVersion %q: must be %q", c.APIVersion, APIVersion))
	}
	if c.Kind != KindCluster {
		errs.add("kind", fmt.Sprintf("unsupported kind %q: must be %q", c.Kind, KindCluster))
	}
	validateName(&errs, c.Metadata.Name)

	s := &c.Spec
	clusterVersion := validateClusterVersion(&errs, s.KubernetesVersion, running)
	validateUpgradeImage(&errs, c, clusterVersion, running)
	validateProvider(&errs, &s.Provider)
	printable(&errs, "spec.controlPlane.machineType", s.ControlPlane.MachineType)
	validatePools(&errs, c.Metadata.Name, s.NodePools, clusterVersion)
	validateHealth(&errs, &s.Health)
	validateRollout(&errs, &s.Rollout)
	validateBackup(&errs, &s.Backup)
	validateAutoscaling(&errs, s)
	validateSimulatedMachineTypes(&errs, s)
	validateDockerMachineTypes(&errs, s)

	// A frozen field's other problems go with it: setting it back fixes them.
	errs = slices.DeleteFunc(errs, func(fe FieldError) bool { return withinAny(fe.Field, covered) })
	return append(frozen, errs...).err()
}

func validateName(errs *errorList, name string) {
	const field = "metadata.name"
	switch {
	case name == "":
		errs.add(field, fmt.Sprintf("required: name the cluster, e.g. %q", DefaultClusterName))
	case len(name) > MaxClusterNameLength:
		errs.add(field, fmt.Sprintf("%q is %d characters long: at most %d are allowed because machine names are made from it", name, len(name), MaxClusterNameLength))
	default:
		if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
			errs.add(field, fmt.Sprintf("invalid name %q: %s", name, strings.Join(msgs, "; ")))
		}
	}
}

// ParseKubernetesVersion parses a version as the spec writes it,
// vMAJOR.MINOR.PATCH, e.g. "v1.34.2". Pre-releases are refused: there are no
// node images for them.
func ParseKubernetesVersion(s string) (*version.Version, error) {
	v, err := version.ParseSemantic(s)
	if err != nil || !strings.HasPrefix(s, "v") || strings.TrimSpace(s) != s || v.PreRelease() != "" || v.BuildMetadata() != "" {
		return nil, fmt.Errorf("invalid Kubernetes version %q: write it as vMAJOR.MINOR.PATCH, e.g. %q", s, DefaultKubernetesVersion)
	}
	return v, nil
}

// supportedVersion parses s and checks it is one Seed can run; it records a
// problem on field and returns nil otherwise.
func supportedVersion(errs *errorList, field, s string) *version.Version {
	if s == "" {
		errs.add(field, fmt.Sprintf("required: set a Kubernetes version, e.g. %q", DefaultKubernetesVersion))
		return nil
	}
	v, err := ParseKubernetesVersion(s)
	if err != nil {
		errs.add(field, err.Error())
		return nil
	}
	if v.Major() != 1 || v.Minor() < OldestKubernetesMinor || v.Minor() > NewestKubernetesMinor {
		errs.add(field, fmt.Sprintf("Kubernetes %s is not supported: use a version from v1.%d to v1.%d", s, OldestKubernetesMinor, NewestKubernetesMinor))
		return nil
	}
	return v
}

func validateClusterVersion(errs *errorList, s string, running *version.Version) *version.Version {
	const field = "spec.kubernetesVersion"
	v := supportedVersion(errs, field, s)
	if v == nil || running == nil {
		return v
	}
	switch {
	case v.LessThan(running):
		errs.add(field, fmt.Sprintf("the cluster runs %s and Kubernetes cannot be downgraded to %s: set %s or later", vstr(running), s, vstr(running)))
	case v.Major() != running.Major() || v.Minor() > running.Minor()+1:
		errs.add(field, fmt.Sprintf("the cluster runs %s and cannot skip minor versions to %s: upgrade to v%d.%d.x first", vstr(running), s, running.Major(), running.Minor()+1))
	}
	return v
}

// validateUpgradeImage rejects an upgrade the Docker provider could not
// carry out: a nodeImage runs one Kubernetes version on every machine.
func validateUpgradeImage(errs *errorList, c *Cluster, v, running *version.Version) {
	if v == nil || running == nil || v.EqualTo(running) || c.Spec.Provider.Docker == nil || c.Spec.Provider.Docker.NodeImage == "" {
		return
	}
	errs.add("spec.provider.docker.nodeImage", fmt.Sprintf("%q runs one Kubernetes version on every machine, and the cluster runs %s while spec.kubernetesVersion asks for %s: "+
		"remove nodeImage (machines then run seed-node:<version>, built by hack/build-images.sh VERSION), or set spec.kubernetesVersion back to %s",
		c.Spec.Provider.Docker.NodeImage, vstr(running), vstr(v), vstr(running)))
}

// printable checks a free-form string for characters no image name, machine
// type or key name contains: control characters and invisible separators
// are mistakes, and YAML tools do not all write them back the same way.
func printable(errs *errorList, field, s string) {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			errs.add(field, fmt.Sprintf("%q contains %U, a control or invisible character: remove it", s, r))
			return
		}
	}
}

// isAWSID reports whether id is an EC2 resource ID of the given kind:
// "vpc-", "subnet-" or "ami-" and 8 or 17 lower-case hex digits.
func isAWSID(kind, id string) bool {
	hex, found := strings.CutPrefix(id, kind+"-")
	if !found || (len(hex) != 8 && len(hex) != 17) {
		return false
	}
	return strings.Trim(hex, "0123456789abcdef") == ""
}

// vstr prints a version the way the spec writes it; Version.String drops the v.
func vstr(v *version.Version) string { return "v" + v.String() }

func validateProvider(errs *errorList, p *ProviderSpec) {
	const field = "spec.provider"
	const choose = "set exactly one of spec.provider.docker, spec.provider.aws or spec.provider.simulated"
	switch set := providerKinds(p); len(set) {
	case 0:
		errs.add(field, "no provider is set: "+choose)
	case 1:
	case 2:
		errs.add(field, "both "+set[0]+" and "+set[1]+" are set: "+choose)
	default:
		errs.add(field, strings.Join(set, ", ")+" are all set: "+choose)
	}
	if s := p.Simulated; s != nil && s.RegistrationDelay != nil {
		if d := s.RegistrationDelay.Duration; d < 0 || d > MaxSimulatedRegistrationDelay {
			errs.add(field+".simulated.registrationDelay", fmt.Sprintf("%s is out of range: use 0 to %s", d, MaxSimulatedRegistrationDelay))
		}
	}
	if d := p.Docker; d != nil {
		printable(errs, field+".docker.nodeImage", d.NodeImage)
		if d.APIServerPort < 0 || d.APIServerPort > 65535 {
			errs.add(field+".docker.apiServerPort", fmt.Sprintf("%d is not a port: use 1 to 65535, or 0 to pick a free port", d.APIServerPort))
		}
	}
	if a := p.AWS; a != nil {
		const aws = field + ".aws"
		printable(errs, aws+".sshKeyName", a.SSHKeyName)
		printable(errs, aws+".agentImage", a.AgentImage)
		printable(errs, aws+".credentialsSecret", a.CredentialsSecret)
		for i, z := range a.AvailabilityZones {
			printable(errs, index(aws+".availabilityZones", i), z)
		}
		switch {
		case a.Region == "":
			errs.add(aws+".region", `required: set the AWS region, e.g. "eu-west-1"`)
		case !awsRegionPattern.MatchString(a.Region):
			errs.add(aws+".region", fmt.Sprintf(`invalid region %q: write a region name such as "eu-west-1"`, a.Region))
		}
		if a.VPCID != "" && !isAWSID("vpc", a.VPCID) {
			errs.add(aws+".vpcID", fmt.Sprintf(`invalid VPC ID %q: VPC IDs look like "vpc-0123456789abcdef0"`, a.VPCID))
		}
		if a.VPCID != "" && len(a.SubnetIDs) == 0 {
			errs.add(aws+".subnetIDs", "required when spec.provider.aws.vpcID is set: list the subnets of that VPC to put machines in")
		}
		if a.VPCID == "" && len(a.SubnetIDs) > 0 {
			errs.add(aws+".vpcID", "required when spec.provider.aws.subnetIDs is set: name the VPC the subnets belong to, or remove subnetIDs to let Seed create a VPC")
		}
		for i, id := range a.SubnetIDs {
			if !isAWSID("subnet", id) {
				errs.add(index(aws+".subnetIDs", i), fmt.Sprintf(`invalid subnet ID %q: subnet IDs look like "subnet-0123456789abcdef0"`, id))
			}
		}
		if a.AMI != "" && !isAWSID("ami", a.AMI) {
			errs.add(aws+".ami", fmt.Sprintf(`invalid AMI ID %q: AMI IDs look like "ami-0123456789abcdef0"; leave it empty to use Debian 12`, a.AMI))
		}
	}
}

// validateSimulatedMachineTypes rejects machine types the simulated
// provider has no capacity for: a simulated machine is nothing but its
// declared capacity, so an unknown type could only be guessed at.
func validateSimulatedMachineTypes(errs *errorList, s *ClusterSpec) {
	if s.Provider.Simulated == nil {
		return
	}
	check := func(field, t string) {
		if _, _, ok := SimulatedMachineType(t); t != "" && !ok {
			errs.add(field, fmt.Sprintf("unknown simulated machine type %q: use %s, or leave it empty for %s",
				t, simulatedMachineTypes, DefaultSimulatedMachineType))
		}
	}
	check("spec.controlPlane.machineType", s.ControlPlane.MachineType)
	for i, p := range s.NodePools {
		check(index("spec.nodePools", i)+".machineType", p.MachineType)
	}
}

// validateDockerMachineTypes rejects machine types the Docker provider
// cannot size a machine to: anything but empty or <cpu>x<memory>, and
// sizes too small to run a node's own pods.
func validateDockerMachineTypes(errs *errorList, s *ClusterSpec) {
	if s.Provider.Docker == nil {
		return
	}
	check := func(field, t string) {
		// An unprintable type is reported as such already: one problem
		// per field, the one whose fix comes first.
		if t == "" || strings.IndexFunc(t, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return
		}
		cpu, mem, ok := DockerMachineType(t)
		switch {
		case !ok:
			errs.add(field, fmt.Sprintf("%q is not a Docker machine type: use <cpu>x<memory> such as 1x2Gi or 500mx1Gi, or leave it empty for a machine that sees the whole host", t))
		case cpu < MinDockerMachineMilliCPU:
			errs.add(field, fmt.Sprintf("%s offers %dm CPU: a Docker machine needs at least %dm to run its own pods", t, cpu, MinDockerMachineMilliCPU))
		case mem < MinDockerMachineMemory:
			errs.add(field, fmt.Sprintf("%s offers %s of memory: a Docker machine needs at least 512Mi to run its own pods", t,
				resource.NewQuantity(mem, resource.BinarySI)))
		}
	}
	check("spec.controlPlane.machineType", s.ControlPlane.MachineType)
	for i, p := range s.NodePools {
		check(index("spec.nodePools", i)+".machineType", p.MachineType)
	}
}

func validatePools(errs *errorList, clusterName string, pools []NodePool, clusterVersion *version.Version) {
	seen := map[string]int{}
	for i := range pools {
		p := &pools[i]
		path := index("spec.nodePools", i)
		validatePoolName(errs, path+".name", clusterName, p.Name)
		if first, dup := seen[p.Name]; dup && p.Name != "" {
			errs.add(path+".name", fmt.Sprintf("duplicate pool name %q: pool names must be unique (spec.nodePools[%d] has it too)", p.Name, first))
		} else {
			seen[p.Name] = i
		}
		validateReplicas(errs, path, p)
		printable(errs, path+".machineType", p.MachineType)
		validatePoolVersion(errs, path+".kubernetesVersion", p.KubernetesVersion, clusterVersion)
		validateLabels(errs, path+".labels", p.Labels)
		validateTaints(errs, path+".taints", p.Taints)
	}
}

func validatePoolName(errs *errorList, field, clusterName, name string) {
	switch name {
	case "":
		errs.add(field, `required: name the pool, e.g. "workers"`)
	case ControlPlanePool:
		errs.add(field, fmt.Sprintf("%q is reserved for the control-plane machine: choose another pool name", name))
	default:
		if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
			errs.add(field, fmt.Sprintf("invalid pool name %q: %s", name, strings.Join(msgs, "; ")))
			return
		}
		// Only worth saying when the cluster name itself is fine.
		if clusterName != "" && len(clusterName) <= MaxClusterNameLength {
			if limit := maxMachineNamePrefix - len(clusterName) - 1; len(name) > limit {
				errs.add(field, fmt.Sprintf("pool name %q is too long for machine names of cluster %q: use at most %d characters", name, clusterName, limit))
			}
		}
	}
}

func validateReplicas(errs *errorList, path string, p *NodePool) {
	count := func(field string, n int32) bool {
		switch {
		case n < 0:
			errs.add(field, fmt.Sprintf("%d is negative: must be 0 or more", n))
		case n > MaxReplicas:
			errs.add(field, fmt.Sprintf("%d is too many: must be at most %d", n, MaxReplicas))
		default:
			return true
		}
		return false
	}
	replicasOK := count(path+".replicas", p.Replicas)
	minOK := p.MinReplicas != nil && count(path+".minReplicas", *p.MinReplicas)
	maxOK := p.MaxReplicas != nil && count(path+".maxReplicas", *p.MaxReplicas)
	switch {
	case p.MinReplicas != nil && p.MaxReplicas == nil:
		errs.add(path+".maxReplicas", "required with minReplicas: set maxReplicas too to autoscale the pool between them, or remove minReplicas for a fixed size of replicas")
	case p.MaxReplicas != nil && p.MinReplicas == nil:
		errs.add(path+".minReplicas", "required with maxReplicas: set minReplicas too to autoscale the pool between them, or remove maxReplicas for a fixed size of replicas")
	case minOK && maxOK && *p.MinReplicas > *p.MaxReplicas:
		errs.add(path+".minReplicas", fmt.Sprintf("%d is greater than maxReplicas %d: minReplicas must not exceed maxReplicas", *p.MinReplicas, *p.MaxReplicas))
	case p.Autoscaled() && replicasOK && p.Replicas != 0:
		// Two sizes would leave it unclear which one an edit changes.
		errs.add(path+".replicas", fmt.Sprintf("%d is set on a pool with minReplicas and maxReplicas: the agent sizes an autoscaled pool itself, between them (its size is in the agent's status); remove replicas, or remove minReplicas and maxReplicas for a fixed size",
			p.Replicas))
	}
}

// validateAutoscaling checks spec.autoscaling, which only autoscaled pools
// read: set without one, it would do nothing.
func validateAutoscaling(errs *errorList, s *ClusterSpec) {
	a := &s.Autoscaling
	set := a.ScaleDownUnneededTime != nil || a.ScaleDownDelayAfterAdd != nil || a.ScaleDownUtilizationThreshold != nil
	if set && !s.AnyAutoscaled() {
		errs.add("spec.autoscaling", "no pool is autoscaled, so these settings would do nothing: give a pool minReplicas and maxReplicas, or remove spec.autoscaling")
		return
	}
	validateDuration(errs, "spec.autoscaling.scaleDownUnneededTime", a.ScaleDownUnneededTime)
	validateDuration(errs, "spec.autoscaling.scaleDownDelayAfterAdd", a.ScaleDownDelayAfterAdd)
	if t := a.ScaleDownUtilizationThreshold; t != nil && (*t < 1 || *t > 100) {
		errs.add("spec.autoscaling.scaleDownUtilizationThreshold", fmt.Sprintf("%d is not a percentage from 1 to 100 (the default is %d)", *t, DefaultScaleDownUtilizationThreshold))
	}
}

func validatePoolVersion(errs *errorList, field, s string, cluster *version.Version) {
	if s == "" {
		// SetDefaults copies the cluster's version; empty means "same".
		return
	}
	v := supportedVersion(errs, field, s)
	if v == nil || cluster == nil {
		return
	}
	switch {
	case v.GreaterThan(cluster):
		errs.add(field, fmt.Sprintf("%s is newer than spec.kubernetesVersion %s: kubelets may not be newer than the control plane; upgrade spec.kubernetesVersion first", s, vstr(cluster)))
	case cluster.Minor()-v.Minor() > MaxPoolVersionSkew:
		errs.add(field, fmt.Sprintf("%s is more than %d minor versions older than spec.kubernetesVersion %s: use v1.%d or later", s, MaxPoolVersionSkew, vstr(cluster), cluster.Minor()-MaxPoolVersionSkew))
	}
}

// reservedKey reports whether a label or taint key is in Seed's own domain
// (seed.dev/ or a subdomain of it), which Seed uses to find its machines.
func reservedKey(k string) bool {
	prefix, _, found := strings.Cut(k, "/")
	return found && (prefix == ReservedLabelDomain || strings.HasSuffix(prefix, "."+ReservedLabelDomain))
}

// KubeletMaySetLabel reports whether a kubelet may put the label on its own
// Node when it registers. The NodeRestriction admission plugin refuses keys
// in the kubernetes.io and k8s.io domains except the well-known node labels
// and the kubelet.kubernetes.io and node.kubernetes.io subdomains; a kubelet
// asked to set another would never register.
func KubeletMaySetLabel(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return true
	}
	if prefix != "kubernetes.io" && prefix != "k8s.io" &&
		!strings.HasSuffix(prefix, ".kubernetes.io") && !strings.HasSuffix(prefix, ".k8s.io") {
		return true
	}
	if strings.HasPrefix(prefix, "kubelet.kubernetes.io") || strings.HasPrefix(prefix, "node.kubernetes.io") {
		return true
	}
	switch key {
	case "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
		"beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
		"failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
		"topology.kubernetes.io/region", "topology.kubernetes.io/zone":
		return true
	}
	return false
}

func validateLabels(errs *errorList, path string, labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field := key(path, k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs.add(field, fmt.Sprintf("invalid label key %q: %s", k, strings.Join(msgs, "; ")))
		} else if reservedKey(k) {
			errs.add(field, fmt.Sprintf("label key %q uses the %s/ prefix, which Seed reserves for its own labels: choose another prefix", k, ReservedLabelDomain))
		} else if !KubeletMaySetLabel(k) {
			errs.add(field, fmt.Sprintf("label key %q is in a Kubernetes domain the kubelet may not set on its own Node (NodeRestriction), so the machines would never register: use your own prefix (example.com/role), or node.kubernetes.io/", k))
		}
		if msgs := validation.IsValidLabelValue(labels[k]); len(msgs) > 0 {
			errs.add(field, fmt.Sprintf("invalid label value %q: %s", labels[k], strings.Join(msgs, "; ")))
		}
	}
}

func validateTaints(errs *errorList, path string, taints []Taint) {
	type keyEffect struct{ key, effect string }
	seen := map[keyEffect]int{}
	for i, t := range taints {
		p := index(path, i)
		switch msgs := validation.IsQualifiedName(t.Key); {
		case t.Key == "":
			errs.add(p+".key", `required: set a taint key, e.g. "dedicated"`)
		case len(msgs) > 0:
			errs.add(p+".key", fmt.Sprintf("invalid taint key %q: %s", t.Key, strings.Join(msgs, "; ")))
		case reservedKey(t.Key):
			errs.add(p+".key", fmt.Sprintf("taint key %q uses the %s/ prefix, which Seed reserves for its own taints: choose another prefix", t.Key, ReservedLabelDomain))
		}
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
			errs.add(p+".value", fmt.Sprintf("invalid taint value %q: %s", t.Value, strings.Join(msgs, "; ")))
		}
		if !slices.Contains(taintEffects, t.Effect) {
			errs.add(p+".effect", fmt.Sprintf("invalid taint effect %q: must be one of %s", t.Effect, strings.Join(taintEffects, ", ")))
		}
		ke := keyEffect{t.Key, t.Effect}
		if first, dup := seen[ke]; dup && t.Key != "" {
			errs.add(p, fmt.Sprintf("duplicate taint %s:%s: a key and effect may appear once per pool (taints[%d] has it too)", t.Key, t.Effect, first))
		} else {
			seen[ke] = i
		}
	}
}

// validateDuration checks an optional duration; nil means the default.
func validateDuration(errs *errorList, field string, d *Duration) {
	if d == nil {
		return
	}
	if err := d.Err(); err != nil {
		errs.add(field, err.Error())
		return
	}
	if d.Duration <= 0 {
		errs.add(field, "must be longer than 0s: write a Go duration such as 90s, 10m or 1h30m, or remove it for the default")
	}
}

func validateHealth(errs *errorList, h *HealthSpec) {
	validateDuration(errs, "spec.health.nodeStartupTimeout", h.NodeStartupTimeout)
	validateDuration(errs, "spec.health.nodeNotReadyTimeout", h.NodeNotReadyTimeout)
	if h.MaxUnhealthy != nil {
		if err := h.MaxUnhealthy.Err(); err != nil {
			errs.add("spec.health.maxUnhealthy", err.Error())
		}
	}
}

func validateRollout(errs *errorList, r *RolloutSpec) {
	surgeOK := r.MaxSurge == nil || *r.MaxSurge >= 0
	if !surgeOK {
		errs.add("spec.rollout.maxSurge", fmt.Sprintf("%d is negative: must be 0 or more", *r.MaxSurge))
	}
	unavailableOK := r.MaxUnavailable == nil || *r.MaxUnavailable >= 0
	if !unavailableOK {
		errs.add("spec.rollout.maxUnavailable", fmt.Sprintf("%d is negative: must be 0 or more", *r.MaxUnavailable))
	}
	if r.MaxSurge != nil && r.MaxUnavailable != nil && *r.MaxSurge == 0 && *r.MaxUnavailable == 0 {
		errs.add("spec.rollout.maxSurge", "maxSurge and maxUnavailable are both 0, so a rollout could never replace a machine: set maxSurge to 1 or more, or maxUnavailable to 1 or more")
	}
	validateDuration(errs, "spec.rollout.drainTimeout", r.DrainTimeout)
}

// validateBackup checks spec.backup, each field on its own so that one
// edit fixes every problem; settings written ahead of enabling are checked
// too.
func validateBackup(errs *errorList, b *BackupSpec) {
	printable(errs, "spec.backup.storageLocation", b.StorageLocation)
	validateSchedule(errs, b.Schedule)
	validateDuration(errs, "spec.backup.maxAge", b.MaxAge)
	if b.StorageLocation != "" && b.StorageLocation != BackupStorageLocation {
		errs.add("spec.backup.storageLocation", fmt.Sprintf("%q: Seed keeps one BackupStorageLocation, %q, pointed at spec.backup.store (or the provider's store): remove storageLocation, and name another store in spec.backup.store",
			b.StorageLocation, BackupStorageLocation))
	}
	if b.Store != nil {
		validateBackupStore(errs, b.Store)
	}
}

var (
	// bucketName is S3's rule for bucket names that work path-style everywhere.
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	regionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// validateBackupStore checks a store the user names, each field on its own,
// so that one edit can fix every problem.
func validateBackupStore(errs *errorList, st *BackupStoreSpec) {
	const path = "spec.backup.store"
	switch u, err := url.Parse(st.Endpoint); {
	case st.Endpoint == "":
		errs.add(path+".endpoint", "required: the store's URL as the cluster's pods reach it, such as https://s3.eu-west-1.amazonaws.com")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs.add(path+".endpoint", fmt.Sprintf("%q is not an http or https URL: write it with its scheme, such as https://%s", st.Endpoint, strings.TrimPrefix(st.Endpoint, "//")))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		errs.add(path+".endpoint", fmt.Sprintf("%q must be the store's address only, without credentials, path or query: name the bucket in bucket and the keys in credentialsSecret", st.Endpoint))
	}
	switch {
	case st.Bucket == "":
		errs.add(path+".bucket", "required: the bucket to keep backups in, which must exist")
	case !bucketName.MatchString(st.Bucket) || strings.Contains(st.Bucket, ".."):
		errs.add(path+".bucket", fmt.Sprintf("%q is not a bucket name: 3 to 63 lower-case letters, digits, '.' or '-', starting and ending with a letter or digit", st.Bucket))
	}
	if st.Region != "" && !regionName.MatchString(st.Region) {
		errs.add(path+".region", fmt.Sprintf("%q is not a region name such as us-east-1", st.Region))
	}
	switch {
	case st.CredentialsSecret == "":
		errs.add(path+".credentialsSecret", "required: a Secret in the agent's namespace whose key \"cloud\" holds an AWS shared-credentials file for the store")
	case len(validation.IsDNS1123Subdomain(st.CredentialsSecret)) > 0:
		errs.add(path+".credentialsSecret", fmt.Sprintf("%q is not a Secret name: lower-case letters, digits, '-' and '.'", st.CredentialsSecret))
	}
}
