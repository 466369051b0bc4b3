package aws

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers"
)

const (
	// consistencyWindow is how long an instance this process launched, but
	// Describe does not show yet, is still reported (as Pending), and how
	// long one it terminated is reported as Deleting whatever Describe says.
	consistencyWindow = 2 * time.Minute
	// maxGroups bounds the RunInstances calls of one scale-up: machines of
	// a batch are spread over at most this many subnets (zones).
	maxGroups = 3
	// maxGenerations bounds how often a name's token moves on because its
	// earlier instances are gone.
	maxGenerations = 8
	// rootVolumeGiB is the root volume of every machine: images, logs and,
	// on the control plane, etcd.
	rootVolumeGiB = 30
)

// liveStates are every instance state but terminated.
var liveStates = []string{"pending", "running", "shutting-down", "stopping", "stopped"}

// record is a machine with what the provider needs to act on it.
type record struct {
	m        providers.Machine
	id       string
	launched time.Time
	// at is when this process launched it (for the launched map).
	at time.Time
	// eni is the instance's primary interface (device 0).
	eni string
}

type listCache struct {
	records []record
	at      time.Time
	valid   bool
	// writes counts this provider's writes; a Describe that raced a write
	// does not refill the cache.
	writes uint64
}

// ListMachines returns the cluster's machines with one paginated
// DescribeInstances filtered by the ownership tags, answered from memory
// for ListTTL after that.
func (p *provider) ListMachines(ctx context.Context) ([]providers.Machine, error) {
	recs, err := p.list(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]providers.Machine, len(recs))
	for i, r := range recs {
		out[i] = r.m
	}
	return out, nil
}

func (p *provider) list(ctx context.Context, fresh bool) ([]record, error) {
	now := p.clock.Now()
	p.mu.Lock()
	if !fresh && p.cache.valid && p.listTTL > 0 && now.Sub(p.cache.at) < p.listTTL {
		recs := p.overlayLocked(p.cache.records, now)
		p.mu.Unlock()
		return recs, nil
	}
	writes := p.cache.writes
	p.mu.Unlock()

	insts, err := p.describeInstances(ctx, &ec2.DescribeInstancesInput{
		Filters: p.ownedFilters(filter("instance-state-name", liveStates...)),
	})
	if err != nil {
		return nil, classify("listing machines", err)
	}
	recs, dups := recordsOf(insts)
	if len(dups) > 0 {
		p.terminateDuplicates(ctx, dups)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cache.writes == writes {
		p.cache.records, p.cache.at, p.cache.valid = recs, now, true
	}
	return p.overlayLocked(recs, now), nil
}

// overlayLocked corrects a Describe answer for eventual consistency: EC2
// may not list an instance for a few seconds after RunInstances, nor show
// it shutting down right after TerminateInstances.
func (p *provider) overlayLocked(recs []record, now time.Time) []record {
	out := make([]record, 0, len(recs)+len(p.launched))
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.m.Name] = true
		if t, ok := p.deleted[r.m.Name]; ok && !r.launched.After(t) && (r.m.Phase == providers.PhasePending || r.m.Phase == providers.PhaseRunning) {
			r.m.Phase = providers.PhaseDeleting
		}
		out = append(out, r)
	}
	for name, r := range p.launched {
		switch {
		case seen[name]:
			delete(p.launched, name)
		case now.Sub(r.at) > consistencyWindow:
			delete(p.launched, name)
		default:
			r.m.Phase = providers.PhasePending
			out = append(out, r)
		}
	}
	for name, t := range p.deleted {
		if now.Sub(t) > consistencyWindow {
			delete(p.deleted, name)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].m.Name < out[j].m.Name })
	return out
}

// cachedLocked returns the live machines the cache knows, by name, without
// a call; nothing when the cache is stale.
func (p *provider) cachedLocked(now time.Time) map[string]record {
	m := map[string]record{}
	if !p.cache.valid || p.listTTL <= 0 || now.Sub(p.cache.at) >= p.listTTL {
		for name, r := range p.launched {
			m[name] = r
		}
		return m
	}
	for _, r := range p.overlayLocked(p.cache.records, now) {
		if r.m.Phase != providers.PhaseDeleting && r.m.Phase != providers.PhaseFailed {
			m[r.m.Name] = r
		}
	}
	return m
}

// wroteLocked invalidates the list cache.
func (p *provider) wroteLocked() {
	p.cache.valid = false
	p.cache.writes++
}

// recordsOf turns instances into machines, one per name. When a name has
// more than one live instance (two agents raced, or a batch was retried
// with different members after a crash), the oldest wins and the others
// are returned as duplicates.
func recordsOf(insts []types.Instance) (recs []record, dups []record) {
	byName := map[string][]record{}
	for _, in := range insts {
		r, ok := recordOf(in)
		if !ok {
			continue
		}
		byName[r.m.Name] = append(byName[r.m.Name], r)
	}
	for _, rs := range byName {
		sort.Slice(rs, func(i, j int) bool {
			if !rs[i].launched.Equal(rs[j].launched) {
				return rs[i].launched.Before(rs[j].launched)
			}
			return rs[i].id < rs[j].id
		})
		keep := 0
		for i := range rs {
			if rs[i].m.Phase != providers.PhaseDeleting {
				keep = i
				break
			}
		}
		recs = append(recs, rs[keep])
		for i, r := range rs {
			if i != keep && r.m.Phase != providers.PhaseDeleting {
				dups = append(dups, r)
			}
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].m.Name < recs[j].m.Name })
	return recs, dups
}

func recordOf(in types.Instance) (record, bool) {
	tags := tagMap(in.Tags)
	name := machineName(tags, aws.ToInt32(in.AmiLaunchIndex))
	if name == "" {
		return record{}, false
	}
	az := ""
	if in.Placement != nil {
		az = aws.ToString(in.Placement.AvailabilityZone)
	}
	id := aws.ToString(in.InstanceId)
	eni := ""
	for _, ni := range in.NetworkInterfaces {
		if eni == "" || (ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0) {
			eni = aws.ToString(ni.NetworkInterfaceId)
		}
	}
	return record{
		id:       id,
		eni:      eni,
		launched: aws.ToTime(in.LaunchTime),
		m: providers.Machine{
			Name:              name,
			Pool:              tags[providers.LabelPool],
			Role:              providers.Role(tags[providers.LabelRole]),
			MachineType:       string(in.InstanceType),
			KubernetesVersion: tags[providers.LabelVersion],
			ProviderID:        providerID(az, id),
			Phase:             phaseOf(in.State),
			CreatedAt:         aws.ToTime(in.LaunchTime),
			InternalIP:        aws.ToString(in.PrivateIpAddress),
		},
	}, true
}

// providerID is what the cloud-provider-aws convention puts in a Node's
// spec.providerID, and what the machine writes to /var/lib/seed/provider-id.
func providerID(az, id string) string { return "aws:///" + az + "/" + id }

func phaseOf(s *types.InstanceState) providers.Phase {
	if s == nil {
		return providers.PhasePending
	}
	switch s.Name {
	case types.InstanceStateNameRunning:
		return providers.PhaseRunning
	case types.InstanceStateNameStopping, types.InstanceStateNameStopped:
		return providers.PhaseStopped
	case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
		return providers.PhaseDeleting
	default:
		return providers.PhasePending
	}
}

func (p *provider) terminateDuplicates(ctx context.Context, dups []record) {
	ids := make([]string, len(dups))
	for i, d := range dups {
		ids[i] = d.id
		p.log.Info("Terminating duplicate instance: an older instance already is this machine", "machine", d.m.Name, "instance", d.id)
	}
	if _, err := p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		p.log.Error(err, "Could not terminate duplicate instances; the next list tries again", "instances", ids)
	}
}

// describeInstances pages through DescribeInstances.
func (p *provider) describeInstances(ctx context.Context, in *ec2.DescribeInstancesInput) ([]types.Instance, error) {
	var out []types.Instance
	in.NextToken = nil
	if len(in.InstanceIds) == 0 {
		in.MaxResults = aws.Int32(p.pageSize)
	}
	for {
		res, err := p.ec2.DescribeInstances(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, r := range res.Reservations {
			out = append(out, r.Instances...)
		}
		if aws.ToString(res.NextToken) == "" {
			return out, nil
		}
		in.NextToken = res.NextToken
	}
}

// CreateMachine creates the machine unless one of that name exists, and
// returns it either way.
func (p *provider) CreateMachine(ctx context.Context, spec providers.MachineSpec) (providers.Machine, error) {
	ms, err := p.CreateMachines(ctx, []providers.MachineSpec{spec})
	if len(ms) == 1 {
		return ms[0], nil
	}
	if err == nil {
		err = providers.NewError(providers.KindTransient, "creating machine "+spec.Name, errors.New("no instance was launched"))
	}
	return providers.Machine{}, err
}

// CreateMachines creates the machines whose names do not exist yet. Worker
// machines that share pool, type and version are launched together: one
// RunInstances per subnet, over at most three subnets, with capacity
// errors falling through to the next subnet.
func (p *provider) CreateMachines(ctx context.Context, specs []providers.MachineSpec) ([]providers.Machine, error) {
	if err := validateSpecs(specs); err != nil {
		return nil, err
	}
	got := map[string]providers.Machine{}
	p.mu.Lock()
	known := p.cachedLocked(p.clock.Now())
	p.mu.Unlock()
	var todo []providers.MachineSpec
	for _, s := range specs {
		if r, ok := known[s.Name]; ok {
			got[s.Name] = r.m
			continue
		}
		todo = append(todo, s)
	}

	var errs []error
	if len(todo) > 0 {
		ms, err := p.launch(ctx, todo)
		for _, m := range ms {
			got[m.Name] = m
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	out := make([]providers.Machine, 0, len(specs))
	for _, s := range specs {
		if m, ok := got[s.Name]; ok {
			out = append(out, m)
			if s.Role == providers.RoleControlPlane {
				// Here rather than at launch, so that a call that launched
				// and then failed to claim claims when asked again.
				if err := p.claimIfUnserved(ctx, s.Name); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return out, errors.Join(errs...)
}

// claimIfUnserved gives the endpoint to the control plane when no control
// plane has it (endpoint.go).
func (p *provider) claimIfUnserved(ctx context.Context, machine string) error {
	n, err := p.network(ctx)
	if err != nil {
		return err
	}
	ep, err := p.endpoint(ctx, n)
	if err != nil || ep.legacy {
		return err
	}
	return p.claimEndpoint(ctx, ep, machine)
}

func validateSpecs(specs []providers.MachineSpec) error {
	seen := map[string]bool{}
	for _, s := range specs {
		op := "creating machine " + s.Name
		switch {
		case !clusterNameRE.MatchString(s.Name):
			return providers.NewError(providers.KindInvalid, op, fmt.Errorf("machine name %q must be a DNS label", s.Name))
		case seen[s.Name]:
			return providers.NewError(providers.KindInvalid, op, errors.New("the name is asked for twice"))
		case s.Role != providers.RoleControlPlane && s.Role != providers.RoleWorker:
			return providers.NewError(providers.KindInvalid, op, fmt.Errorf("unknown role %q", s.Role))
		case s.MachineType == "":
			return providers.NewError(providers.KindInvalid, op, errors.New("machine type is required"))
		}
		if _, err := packageVersion(s.KubernetesVersion); err != nil {
			return providers.NewError(providers.KindInvalid, op, err)
		}
		if err := validateBootstrap(s.Bootstrap); err != nil {
			return providers.NewError(providers.KindInvalid, op, err)
		}
		seen[s.Name] = true
	}
	return nil
}

// launchKey groups specs that one RunInstances can launch.
type launchKey struct {
	role    providers.Role
	pool    string
	typ     string
	version string
}

func (p *provider) launch(ctx context.Context, specs []providers.MachineSpec) ([]providers.Machine, error) {
	net, err := p.network(ctx)
	if err != nil {
		return nil, err
	}
	var typeNames []string
	groups := map[launchKey][]providers.MachineSpec{}
	var keys []launchKey
	for _, s := range specs {
		k := launchKey{s.Role, s.Pool, s.MachineType, s.KubernetesVersion}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
			typeNames = append(typeNames, s.MachineType)
		}
		groups[k] = append(groups[k], s)
	}
	infos, err := p.describeTypes(ctx, typeNames)
	if err != nil {
		return nil, err
	}
	var out []providers.Machine
	var errs []error
	for _, k := range keys {
		img, err := p.image(ctx, infos[k.typ].arch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		staged, err := p.stagedImages(ctx, k.role)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var ms []providers.Machine
		if k.role == providers.RoleControlPlane {
			ms, err = p.launchControlPlane(ctx, net, img, staged, groups[k])
		} else {
			ms, err = p.launchWorkers(ctx, net, img, staged, groups[k])
		}
		out = append(out, ms...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// placement is where a launch goes: a subnet, or, for the control plane
// of a cluster made before the movable endpoint, its endpoint interface
// (which fixes the subnet).
type placement struct {
	subnet subnet
	eni    string
	// vip is the endpoint address a control plane claims when EC2 maps it
	// to its interface (userdata.go).
	vip string
}

// launchWorkers spreads the specs over up to maxGroups subnets. Which
// subnet a name lands in depends only on the set of names, so a retry of
// the same batch sends the same calls with the same tokens.
func (p *provider) launchWorkers(ctx context.Context, net *network, img image, staged []stagedURL, specs []providers.MachineSpec) ([]providers.Machine, error) {
	specs = sortedSpecs(specs)
	subnets := net.subnets
	if len(subnets) == 0 {
		return nil, providers.NewError(providers.KindInvalid, "creating machines", errors.New("the cluster has no subnets: run EnsureInfrastructure first"))
	}
	n := min(len(specs), len(subnets), maxGroups)
	offset := int(hashIndex(namesOf(specs), len(subnets)))
	exhausted := map[string]bool{}
	var out []providers.Machine
	var errs []error
	for g := 0; g < n; g++ {
		var group []providers.MachineSpec
		for i := g; i < len(specs); i += n {
			group = append(group, specs[i])
		}
		var order []placement
		for i := range subnets {
			order = append(order, placement{subnet: subnets[(offset+g+i)%len(subnets)]})
		}
		for _, chunk := range p.fit(group, staged) {
			ms, err := p.launchGroup(ctx, net, img, staged, chunk, order, exhausted)
			out = append(out, ms...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return out, errors.Join(errs...)
}

// fit splits a group until each part's names fit in tags and its user data,
// image URLs included, fits EC2's 16 KiB.
func (p *provider) fit(specs []providers.MachineSpec, staged []stagedURL) [][]providers.MachineSpec {
	if len(specs) <= 1 {
		return [][]providers.MachineSpec{specs}
	}
	_, ok := encodeNames(namesOf(specs))
	if ok {
		if ud, err := renderUserData(userDataFor(specs, staged)); err == nil && len(ud) <= maxUserData {
			return [][]providers.MachineSpec{specs}
		}
	}
	half := len(specs) / 2
	return append(p.fit(specs[:half], staged), p.fit(specs[half:], staged)...)
}

func (p *provider) launchControlPlane(ctx context.Context, net *network, img image, staged []stagedURL, specs []providers.MachineSpec) ([]providers.Machine, error) {
	ep, err := p.endpoint(ctx, net)
	if err != nil {
		return nil, err
	}
	// Control planes go to the endpoint's subnet, each on an interface of
	// its own: the endpoint is a secondary address, which moves only
	// within its subnet.
	pl := placement{subnet: ep.subnet, vip: ep.vip}
	if ep.legacy {
		pl = placement{subnet: ep.subnet, eni: ep.holder}
	}
	var out []providers.Machine
	var errs []error
	for _, s := range specs {
		ms, err := p.launchGroup(ctx, net, img, staged, []providers.MachineSpec{s},
			[]placement{pl}, map[string]bool{})
		out = append(out, ms...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// launchGroup launches specs (sorted by name) with one RunInstances in the
// first placement that has room, moving to the next on a zone capacity
// error; a partial launch sends the rest on. The token depends only on the
// names, never on the placement: EC2 keeps a token only for a request
// that succeeded, so trying the next zone with it is safe, and a request
// that did succeed elsewhere before a crash answers IdempotentParameterMismatch,
// after which its instances are found by their client-token.
func (p *provider) launchGroup(ctx context.Context, net *network, img image, staged []stagedURL, specs []providers.MachineSpec, order []placement, exhausted map[string]bool) ([]providers.Machine, error) {
	op := "creating machines " + strings.Join(namesOf(specs), ", ")
	if len(specs) == 1 {
		op = "creating machine " + specs[0].Name
	}
	pending := specs
	var out []providers.Machine
	var capErr error
	var tried []string
	gen := 0
	for _, pl := range order {
		if len(pending) == 0 {
			break
		}
		if exhausted[pl.subnet.id] {
			continue
		}
		tried = append(tried, pl.subnet.az)
		salt := ""
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt >= maxGenerations {
				return out, providers.NewError(providers.KindTransient, op, fmt.Errorf("gave up after %d launches in %s", attempt, pl.subnet.az))
			}
			names := namesOf(pending)
			token := clientToken(p.cluster, names, gen) + salt
			in, err := p.runInput(ctx, net, img, staged, pending, pl, token)
			if err != nil {
				return out, classify(op, err)
			}
			p.log.Info("Launching instances", "machines", names, "zone", pl.subnet.az, "subnet", pl.subnet.id, "type", pending[0].MachineType)
			insts, err := p.runInstances(ctx, in)
			if isCode(err, codeIdempotentParameterMismatch) {
				// An earlier call with this token succeeded with other
				// parameters: find its instances rather than launch more.
				insts, err = p.instancesByToken(ctx, token)
				if err == nil && len(insts) == 0 {
					p.log.Info("Token was used with other parameters and its instances are not visible; using a token for this subnet", "machines", names)
					salt = "-" + shortHash(pl.subnet.id, 4)
					continue
				}
			}
			if isZoneCapacity(err) {
				p.log.Info("No capacity in this zone, trying the next subnet", "machines", names, "zone", pl.subnet.az, "code", errorCode(err))
				exhausted[pl.subnet.id] = true
				capErr = err
				break
			}
			if err != nil {
				return out, launchError(op, err)
			}
			ms, dead, missing := p.assign(insts, pending)
			out = append(out, ms...)
			next := sortedSpecs(append(dead, missing...))
			switch {
			case len(next) == 0:
				pending = nil
			case equalNames(next, pending):
				// Every instance of this token is gone: the names were
				// deleted and asked for again while EC2 still remembers
				// the token. Move to the next generation.
				gen++
			default:
				gen = 0
				pending = next
			}
			if len(missing) > 0 && len(dead) == 0 {
				p.log.Info("Zone launched fewer instances than asked, trying the next subnet", "launched", len(ms), "missing", namesOf(missing), "zone", pl.subnet.az)
				exhausted[pl.subnet.id] = true
				break
			}
		}
	}
	if len(pending) == 0 {
		return out, nil
	}
	if capErr != nil {
		return out, providers.NewError(providers.KindCapacity, op,
			fmt.Errorf("no capacity for %s in zones %s: %w", pending[0].MachineType, strings.Join(tried, ", "), capErr))
	}
	return out, providers.NewError(providers.KindTransient, op, fmt.Errorf("machines %s were not launched", strings.Join(namesOf(pending), ", ")))
}

// assign matches launched instances to specs by launch index (the specs
// were sent in this order). dead are specs whose instance is already
// shutting down or terminated; missing are specs no instance was launched for.
func (p *provider) assign(insts []types.Instance, specs []providers.MachineSpec) (ms []providers.Machine, dead, missing []providers.MachineSpec) {
	now := p.clock.Now()
	byIndex := map[int32]types.Instance{}
	for _, in := range insts {
		byIndex[aws.ToInt32(in.AmiLaunchIndex)] = in
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range specs {
		in, ok := byIndex[int32(i)]
		if !ok {
			missing = append(missing, s)
			continue
		}
		r, _ := recordOf(in)
		r.m.Name = s.Name
		if r.m.Phase == providers.PhaseDeleting {
			dead = append(dead, s)
			continue
		}
		r.m.Pool, r.m.Role, r.m.KubernetesVersion = s.Pool, s.Role, s.KubernetesVersion
		r.at = now
		p.launched[s.Name] = r
		ms = append(ms, r.m)
	}
	p.wroteLocked()
	return ms, dead, missing
}

// runInstances calls RunInstances, waiting out IAM's and EC2's eventual
// consistency right after this process ran EnsureInfrastructure: EC2
// answers InvalidParameterValue for an instance profile it cannot see yet,
// and Invalid...NotFound for a security group or interface just made.
// Retrying is safe: the ClientToken makes it one launch.
func (p *provider) runInstances(ctx context.Context, in *ec2.RunInstancesInput) ([]types.Instance, error) {
	delay := 2 * time.Second
	for attempt := 0; ; attempt++ {
		out, err := p.ec2.RunInstances(ctx, in)
		if err == nil {
			return out.Instances, nil
		}
		p.mu.Lock()
		fresh := !p.ensuredAt.IsZero() && p.clock.Now().Sub(p.ensuredAt) < 2*time.Minute
		p.mu.Unlock()
		settling := isCode(err, codeInvalidParameterValue) || (isNotFound(err) && !isCode(err, "InvalidAMIID.NotFound"))
		if !fresh || !settling || attempt >= 6 {
			return nil, err
		}
		p.log.Info("Retrying launch: what EnsureInfrastructure just made may not be visible to EC2 yet", "code", errorCode(err), "after", delay)
		if err := p.clock.Sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay *= 2
	}
}

// launchError classifies a launch failure. A missing subnet, group,
// interface or image will not appear by itself: Invalid, not NotFound,
// which would read as "the machine does not exist".
func launchError(op string, err error) error {
	if isNotFound(err) {
		return providers.NewError(providers.KindInvalid, op, fmt.Errorf("a resource the launch names is missing (run EnsureInfrastructure): %w", err))
	}
	return classify(op, err)
}

func (p *provider) instancesByToken(ctx context.Context, token string) ([]types.Instance, error) {
	return p.describeInstances(ctx, &ec2.DescribeInstancesInput{
		Filters: p.ownedFilters(filter("client-token", token)),
	})
}

// runInput builds the RunInstances request for specs in one placement.
func (p *provider) runInput(ctx context.Context, net *network, img image, staged []stagedURL, specs []providers.MachineSpec, pl placement, token string) (*ec2.RunInstancesInput, error) {
	s := specs[0]
	names := namesOf(specs)
	tags := []types.Tag{
		{Key: aws.String(ownershipKey(p.cluster)), Value: aws.String(ownedValue)},
		{Key: aws.String(providers.LabelCluster), Value: aws.String(p.cluster)},
		{Key: aws.String(providers.LabelPool), Value: aws.String(s.Pool)},
		{Key: aws.String(providers.LabelRole), Value: aws.String(string(s.Role))},
		{Key: aws.String(providers.LabelVersion), Value: aws.String(s.KubernetesVersion)},
		{Key: aws.String(providers.LabelType), Value: aws.String(s.MachineType)},
	}
	if len(specs) == 1 {
		tags = append(tags,
			types.Tag{Key: aws.String(providers.LabelMachine), Value: aws.String(s.Name)},
			types.Tag{Key: aws.String(tagName), Value: aws.String(s.Name)})
	} else {
		nameTags, _ := encodeNames(names)
		tags = append(tags, nameTags...)
		tags = append(tags, types.Tag{Key: aws.String(tagName), Value: aws.String(p.cluster + "-" + s.Pool)})
	}
	ud, err := p.userData(ctx, specs, staged, pl.vip)
	if err != nil {
		return nil, err
	}
	hops := int32(1)
	profile := workerRoleName(p.cluster)
	shutdown := types.ShutdownBehaviorTerminate
	if s.Role == providers.RoleControlPlane {
		// The agent runs on the control plane; from a pod network
		// namespace IMDS is one hop further than from the host. See doc.go.
		hops = p.cpHops
		profile = controlPlaneRoleName(p.cluster)
		shutdown = types.ShutdownBehaviorStop
	}
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String(img.id),
		InstanceType: types.InstanceType(s.MachineType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(int32(len(specs))),
		ClientToken:  aws.String(token),
		UserData:     aws.String(ud),
		IamInstanceProfile: &types.IamInstanceProfileSpecification{
			Name: aws.String(profile),
		},
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpEndpoint:            types.InstanceMetadataEndpointStateEnabled,
			HttpTokens:              types.HttpTokensStateRequired,
			HttpPutResponseHopLimit: aws.Int32(hops),
		},
		BlockDeviceMappings: []types.BlockDeviceMapping{{
			DeviceName: aws.String(img.rootDevice),
			Ebs: &types.EbsBlockDevice{
				VolumeSize:          aws.Int32(rootVolumeGiB),
				VolumeType:          types.VolumeTypeGp3,
				DeleteOnTermination: aws.Bool(true),
				Encrypted:           aws.Bool(true),
			},
		}},
		InstanceInitiatedShutdownBehavior: shutdown,
		TagSpecifications: []types.TagSpecification{
			tagSpec(types.ResourceTypeInstance, tags),
			tagSpec(types.ResourceTypeVolume, tags),
		},
	}
	if p.spec.SSHKeyName != "" {
		in.KeyName = aws.String(p.spec.SSHKeyName)
	}
	switch {
	case pl.eni != "":
		// A cluster made before the movable endpoint: the endpoint
		// interface carries the subnet and security groups.
		in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex:        aws.Int32(0),
			NetworkInterfaceId: aws.String(pl.eni),
		}}
	default:
		in.SubnetId = aws.String(pl.subnet.id)
		in.SecurityGroupIds = []string{net.nodesSG}
		if s.Role == providers.RoleControlPlane {
			// Whichever control plane has the endpoint serves 6443.
			in.SecurityGroupIds = append(in.SecurityGroupIds, net.apiSG)
		}
		// Tagged as the cluster's: the agent policy lets it move the
		// endpoint address only onto the cluster's interfaces.
		in.TagSpecifications = append(in.TagSpecifications, tagSpec(types.ResourceTypeNetworkInterface, tags))
	}
	return in, nil
}

// DeleteMachine terminates the machine's instance; its root volume goes
// with it. A machine that does not exist is success.
func (p *provider) DeleteMachine(ctx context.Context, name string) error {
	op := "deleting machine " + name
	var ids, cpENIs []string
	// The cache may predate a machine another process made: a name it does
	// not know is looked up again before it counts as gone.
	for _, fresh := range []bool{false, true} {
		recs, err := p.list(ctx, fresh)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.m.Name == name && r.m.Phase != providers.PhaseDeleting {
				ids = append(ids, r.id)
				if r.m.Role == providers.RoleControlPlane && r.eni != "" {
					cpENIs = append(cpENIs, r.eni)
				}
			}
		}
		if len(ids) > 0 {
			break
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if len(cpENIs) > 0 {
		// Terminating the instance would free the endpoint address with
		// its interface: never terminate before it is safe.
		if err := p.parkEndpoint(ctx, name, cpENIs); err != nil {
			return err
		}
	}
	p.log.Info("Terminating instance", "machine", name, "instances", ids)
	delay := time.Second
	var err error
	for attempt := 0; ; attempt++ {
		_, err = p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
		if err == nil || !isCode(err, codeInvalidInstanceIDNotFound) || attempt >= 5 {
			break
		}
		// Just launched: EC2 does not know the ID everywhere yet.
		if err := p.clock.Sleep(ctx, delay); err != nil {
			return classify(op, err)
		}
		delay *= 2
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wroteLocked()
	if err != nil {
		return classify(op, err)
	}
	delete(p.launched, name)
	p.deleted[name] = p.clock.Now()
	return nil
}

func equalNames(a, b []providers.MachineSpec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

func namesOf(specs []providers.MachineSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

func sortedSpecs(specs []providers.MachineSpec) []providers.MachineSpec {
	s := append([]providers.MachineSpec(nil), specs...)
	sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	return s
}

// hashIndex picks a deterministic index in [0, n) for a set of names.
func hashIndex(names []string, n int) uint32 {
	h := shortHash(strings.Join(names, "\x00"), 8)
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		panic(fmt.Sprintf("shortHash returned %q, not 8 hex digits", h)) // cannot happen
	}
	return uint32(v) % uint32(n)
}
