package fake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Defaults of the fake's timings.
const (
	DefaultBootDelay           = 20 * time.Second
	DefaultTerminateDelay      = 40 * time.Second
	DefaultTerminatedRetention = time.Hour
	DefaultAccountID           = "123456789012"
)

// EC2 is an in-memory EC2 for one region. Its methods have the SDK's
// signatures, so it satisfies the provider's EC2API. The zero value is not
// usable; call NewEC2.
type EC2 struct {
	mu    sync.Mutex
	clock *Clock

	// Timings, settable before use.
	BootDelay           time.Duration
	TerminateDelay      time.Duration
	TerminatedRetention time.Duration
	// VisibilityDelay hides a new instance from Describe and Terminate for
	// this long after RunInstances (EC2's eventual consistency).
	VisibilityDelay time.Duration
	// NetworkVisibilityDelay makes a new network resource (VPC, subnet,
	// gateway, route table, security group, interface, Elastic IP) unknown,
	// for this long, to calls that name it by ID: the Invalid...NotFound
	// EC2 can answer right after a Create call.
	NetworkVisibilityDelay time.Duration
	// ProfileExists, when set, says whether an instance profile name is
	// visible to EC2 yet; RunInstances answers InvalidParameterValue if not.
	ProfileExists func(name string) bool

	region  string
	zones   []string
	types   map[string]types.InstanceTypeInfo
	images  []types.Image
	keys    map[string]bool
	account string

	// behaviours
	rng          *rand.Rand
	throttleRate float64
	faults       map[string][]Fault
	capacity     map[string]int
	unsupported  map[string]bool

	calls   map[string]int
	callLog []string

	// state
	seq        int
	instances  map[string]*instance
	order      []string
	tokens     map[string]*tokenRecord
	vpcs       map[string]*types.Vpc
	subnets    map[string]*types.Subnet
	igws       map[string]*types.InternetGateway
	rts        map[string]*types.RouteTable
	rtTokens   map[string]string
	sgs        map[string]*types.SecurityGroup
	enis       map[string]*eni
	eniTokens  map[string]string
	addresses  map[string]*types.Address
	publicIPs  int
	privateIPs map[string]int
	created    map[string]time.Time
}

type instance struct {
	types.Instance
	created      time.Time
	terminatedAt time.Time
	userData     string
	reservation  string
}

type eni struct {
	types.NetworkInterface
	deleteOnTermination bool
}

type tokenRecord struct {
	params      string
	reservation string
	ids         []string
}

// NewEC2 returns an empty region with three zones (<region>a..c), a few
// instance types, official-looking Debian 12 images and one key pair.
func NewEC2(clock *Clock, region string) *EC2 {
	f := &EC2{clock: clock, region: region}
	f.Reset()
	return f
}

// Reset forgets all resources, faults, capacity limits and counts.
func (f *EC2) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.BootDelay, f.TerminateDelay, f.TerminatedRetention = DefaultBootDelay, DefaultTerminateDelay, DefaultTerminatedRetention
	f.VisibilityDelay = 0
	f.NetworkVisibilityDelay = 0
	f.created = map[string]time.Time{}
	f.ProfileExists = nil
	f.account = DefaultAccountID
	f.zones = []string{f.region + "a", f.region + "b", f.region + "c"}
	f.types = map[string]types.InstanceTypeInfo{}
	for _, t := range []struct {
		name  string
		arch  types.ArchitectureType
		vcpus int32
		mem   int64
	}{
		{"t3.micro", types.ArchitectureTypeX8664, 2, 1024},
		{"t3.medium", types.ArchitectureTypeX8664, 2, 4096},
		{"m6i.large", types.ArchitectureTypeX8664, 2, 8192},
		{"m7g.large", types.ArchitectureTypeArm64, 2, 8192},
	} {
		f.types[t.name] = types.InstanceTypeInfo{
			InstanceType:  types.InstanceType(t.name),
			ProcessorInfo: &types.ProcessorInfo{SupportedArchitectures: []types.ArchitectureType{t.arch}},
			VCpuInfo:      &types.VCpuInfo{DefaultVCpus: aws.Int32(t.vcpus)},
			MemoryInfo:    &types.MemoryInfo{SizeInMiB: aws.Int64(t.mem)},
		}
	}
	f.images = nil
	for i, a := range []struct {
		arch types.ArchitectureType
		deb  string
	}{{types.ArchitectureTypeX8664, "amd64"}, {types.ArchitectureTypeArm64, "arm64"}} {
		for j, date := range []string{"2025-01-10T00:00:00.000Z", "2025-06-10T00:00:00.000Z"} {
			f.images = append(f.images, types.Image{
				ImageId:            aws.String(fmt.Sprintf("ami-0deb%d%d0000000000", i, j)),
				Name:               aws.String(fmt.Sprintf("debian-12-%s-%s-2000", a.deb, date[:10])),
				OwnerId:            aws.String("136693071363"),
				Architecture:       types.ArchitectureValues(a.arch),
				CreationDate:       aws.String(date),
				State:              types.ImageStateAvailable,
				RootDeviceName:     aws.String("/dev/xvda"),
				RootDeviceType:     types.DeviceTypeEbs,
				VirtualizationType: types.VirtualizationTypeHvm,
			})
		}
	}
	f.keys = map[string]bool{"debug": true}
	f.rng = rand.New(rand.NewSource(1))
	f.throttleRate = 0
	f.faults = map[string][]Fault{}
	f.capacity = map[string]int{}
	f.unsupported = map[string]bool{}
	f.calls = map[string]int{}
	f.callLog = nil
	f.seq = 0
	f.instances = map[string]*instance{}
	f.order = nil
	f.tokens = map[string]*tokenRecord{}
	f.vpcs = map[string]*types.Vpc{}
	f.subnets = map[string]*types.Subnet{}
	f.igws = map[string]*types.InternetGateway{}
	f.rts = map[string]*types.RouteTable{}
	f.rtTokens = map[string]string{}
	f.sgs = map[string]*types.SecurityGroup{}
	f.enis = map[string]*eni{}
	f.eniTokens = map[string]string{}
	f.addresses = map[string]*types.Address{}
	f.publicIPs = 0
	f.privateIPs = map[string]int{}
}

// ResetCalls zeroes the call counts only.
func (f *EC2) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = map[string]int{}
	f.callLog = nil
}

// Calls is how many times op (e.g. "RunInstances") was called.
func (f *EC2) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// TotalCalls is how many calls were made, of every operation.
func (f *EC2) TotalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// CallLog is the operations called, in order.
func (f *EC2) CallLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.callLog...)
}

// SetThrottleRate makes each call fail with RequestLimitExceeded with this
// probability, from a generator seeded with seed.
func (f *EC2) SetThrottleRate(rate float64, seed int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttleRate = rate
	f.rng = rand.New(rand.NewSource(seed))
}

// InjectFault queues faults for the next calls of op, one per call.
func (f *EC2) InjectFault(op string, faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = append(f.faults[op], faults...)
}

// SetCapacity limits how many more instances the zone can launch; a
// negative n removes the limit.
func (f *EC2) SetCapacity(zone string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n < 0 {
		delete(f.capacity, zone)
		return
	}
	f.capacity[zone] = n
}

// SetUnsupported makes the zone refuse the instance type ("Unsupported").
func (f *EC2) SetUnsupported(zone, instanceType string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unsupported[zone+"/"+instanceType] = true
}

// AccountID is the account resources belong to.
func (f *EC2) AccountID() string { return f.account }

// begin counts a call and returns the fault it must suffer, if any. It is
// called with f.mu held.
func (f *EC2) begin(op string) (before error, after error) {
	f.calls[op]++
	f.callLog = append(f.callLog, op)
	f.refresh()
	if q := f.faults[op]; len(q) > 0 {
		fault := q[0]
		f.faults[op] = q[1:]
		if fault.AfterApply {
			return nil, fault.Err
		}
		return fault.Err, nil
	}
	if f.throttleRate > 0 && f.rng.Float64() < f.throttleRate {
		return Throttled(), nil
	}
	return nil, nil
}

func (f *EC2) id(prefix string) string {
	f.seq++
	id := fmt.Sprintf("%s-%017x", prefix, f.seq)
	f.created[id] = f.now()
	return id
}

// young reports whether id was created too recently for calls that name
// it to see it (NetworkVisibilityDelay).
func (f *EC2) young(ids ...string) error {
	for _, id := range ids {
		if t, ok := f.created[id]; ok && f.now().Before(t.Add(f.NetworkVisibilityDelay)) {
			kind := map[string]string{"vpc": "InvalidVpcID", "subnet": "InvalidSubnetID", "igw": "InvalidInternetGatewayID",
				"rtb": "InvalidRouteTableID", "sg": "InvalidGroup", "eni": "InvalidNetworkInterfaceID", "eipalloc": "InvalidAllocationID"}
			prefix, _, _ := strings.Cut(id, "-")
			return APIError(kind[prefix]+".NotFound", "The ID '%s' does not exist", id)
		}
	}
	return nil
}

func (f *EC2) now() time.Time { return f.clock.Now() }

// refresh moves instances along their lifecycle as time passes.
func (f *EC2) refresh() {
	now := f.now()
	for _, id := range f.order {
		in := f.instances[id]
		if in == nil {
			continue
		}
		switch in.State.Name {
		case types.InstanceStateNamePending:
			if now.Sub(in.created) >= f.BootDelay {
				in.State = state(types.InstanceStateNameRunning)
			}
		case types.InstanceStateNameShuttingDown:
			if now.Sub(in.terminatedAt) >= f.TerminateDelay {
				in.State = state(types.InstanceStateNameTerminated)
				f.releaseInterfaces(in)
			}
		case types.InstanceStateNameTerminated:
			if now.Sub(in.terminatedAt) >= f.TerminateDelay+f.TerminatedRetention {
				delete(f.instances, id)
			}
		}
	}
}

func (f *EC2) releaseInterfaces(in *instance) {
	for _, ni := range in.NetworkInterfaces {
		e := f.enis[aws.ToString(ni.NetworkInterfaceId)]
		if e == nil {
			continue
		}
		if e.deleteOnTermination {
			f.deleteInterface(aws.ToString(e.NetworkInterfaceId))
			continue
		}
		e.Status = types.NetworkInterfaceStatusAvailable
		e.Attachment = nil
	}
	in.NetworkInterfaces = nil
}

func state(n types.InstanceStateName) *types.InstanceState {
	codes := map[types.InstanceStateName]int32{
		types.InstanceStateNamePending: 0, types.InstanceStateNameRunning: 16, types.InstanceStateNameShuttingDown: 32,
		types.InstanceStateNameTerminated: 48, types.InstanceStateNameStopping: 64, types.InstanceStateNameStopped: 80,
	}
	return &types.InstanceState{Name: n, Code: aws.Int32(codes[n])}
}

// visible says whether Describe shows the instance yet.
func (f *EC2) visible(in *instance) bool {
	return !f.now().Before(in.created.Add(f.VisibilityDelay))
}

// --- filters -----------------------------------------------------------

// fieldFunc returns the values a resource has for a filter name; ok false
// means the filter name is not supported for that resource.
type fieldFunc func(name string) (values []string, ok bool)

func tagFields(tags []types.Tag, name string) ([]string, bool) {
	switch {
	case strings.HasPrefix(name, "tag:"):
		k := strings.TrimPrefix(name, "tag:")
		for _, t := range tags {
			if aws.ToString(t.Key) == k {
				return []string{aws.ToString(t.Value)}, true
			}
		}
		return nil, true
	case name == "tag-key":
		var v []string
		for _, t := range tags {
			v = append(v, aws.ToString(t.Key))
		}
		return v, true
	case name == "tag-value":
		var v []string
		for _, t := range tags {
			v = append(v, aws.ToString(t.Value))
		}
		return v, true
	}
	return nil, false
}

// match applies EC2 filter semantics: every filter must match, a filter
// matches when any of its values matches any of the resource's values, and
// values may use * and ? wildcards.
func match(filters []types.Filter, fields fieldFunc) (bool, error) {
	for _, flt := range filters {
		name := aws.ToString(flt.Name)
		have, ok := fields(name)
		if !ok {
			return false, APIError("InvalidParameterValue", "The filter '%s' is invalid", name)
		}
		hit := false
		for _, want := range flt.Values {
			re := globRE(want)
			for _, h := range have {
				if re.MatchString(h) {
					hit = true
				}
			}
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}

// checkFilters rejects filter names the resource does not support, even
// when there is nothing to match, as EC2 does.
func checkFilters(filters []types.Filter, fields fieldFunc) error {
	for _, flt := range filters {
		if _, ok := fields(aws.ToString(flt.Name)); !ok {
			return APIError("InvalidParameterValue", "The filter '%s' is invalid", aws.ToString(flt.Name))
		}
	}
	return nil
}

func globRE(s string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range s {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func tags(specs []types.TagSpecification, rt types.ResourceType) []types.Tag {
	var out []types.Tag
	for _, s := range specs {
		if s.ResourceType == rt {
			out = append(out, s.Tags...)
		}
	}
	return out
}

func checkTagSpecs(specs []types.TagSpecification, allowed ...types.ResourceType) error {
	for _, s := range specs {
		ok := false
		for _, a := range allowed {
			ok = ok || s.ResourceType == a
		}
		if !ok {
			return APIError("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", s.ResourceType)
		}
		if len(s.Tags) > 50 {
			return APIError("TagLimitExceeded", "The maximum number of tags per resource is 50")
		}
		for _, t := range s.Tags {
			if len(aws.ToString(t.Key)) > 128 || len(aws.ToString(t.Value)) > 256 {
				return APIError("InvalidParameterValue", "Tag key or value too long")
			}
		}
	}
	return nil
}

// page cuts a list for MaxResults/NextToken pagination.
func page[T any](items []T, maxResults *int32, next *string) ([]T, *string, error) {
	start := 0
	if t := aws.ToString(next); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > len(items) {
			return nil, nil, APIError("InvalidParameterValue", "Invalid NextToken")
		}
		start = n
	}
	if maxResults == nil {
		return items[start:], nil, nil
	}
	end := min(start+int(*maxResults), len(items))
	var tok *string
	if end < len(items) {
		tok = aws.String(strconv.Itoa(end))
	}
	return items[start:end], tok, nil
}

func checkMaxResults(m *int32, lo, hi int32) error {
	if m != nil && (*m < lo || *m > hi) {
		return APIError("InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. Expecting a value between %d and %d.", *m, lo, hi)
	}
	return nil
}

func hashParams(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}

// allocIP hands out the next private address of a subnet.
func (f *EC2) allocIP(subnetID string) string {
	s := f.subnets[subnetID]
	_, n, _ := net.ParseCIDR(aws.ToString(s.CidrBlock))
	f.privateIPs[subnetID]++
	ip := make(net.IP, 4)
	copy(ip, n.IP.To4())
	v := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	v += uint32(f.privateIPs[subnetID]) + 3 // AWS reserves the first four
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
