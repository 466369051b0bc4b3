package aws

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws/fake"
)

// oneOfEach is what EnsureInfrastructure leaves, however many callers ran
// it at once.
var oneOfEach = map[string]int{
	"vpc": 1, "subnet": 3, "internet-gateway": 1, "route-table": 1, "security-group": 2, "network-interface": 1, "elastic-ip": 1,
}

// checkOneOfEach checks that the cluster has exactly one of everything,
// wired to each other, and nothing else: no loser a caller made and left.
func checkOneOfEach(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	if got := e.ec2.Resources(); !reflect.DeepEqual(got, oneOfEach) {
		t.Fatalf("resources = %v, want %v", got, oneOfEach)
	}
	owned := e.p.ownedFilters()
	vpcs, _ := e.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: owned})
	vpc := aws.ToString(vpcs.Vpcs[0].VpcId)

	igws, _ := e.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: owned})
	g := igws.InternetGateways[0]
	if len(g.Attachments) != 1 || aws.ToString(g.Attachments[0].VpcId) != vpc {
		t.Errorf("internet gateway attachments = %+v, want %s once", g.Attachments, vpc)
	}

	subs, _ := e.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: owned})
	zones := map[string]int{}
	for _, s := range subs.Subnets {
		zones[aws.ToString(s.AvailabilityZone)]++
		if aws.ToString(s.VpcId) != vpc || !aws.ToBool(s.MapPublicIpOnLaunch) {
			t.Errorf("subnet %s in %s, public IPs %v", aws.ToString(s.SubnetId), aws.ToString(s.VpcId), aws.ToBool(s.MapPublicIpOnLaunch))
		}
	}
	if want := map[string]int{testRegion + "a": 1, testRegion + "b": 1, testRegion + "c": 1}; !reflect.DeepEqual(zones, want) {
		t.Errorf("subnets by zone = %v, want one in each", zones)
	}

	rts, _ := e.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: owned})
	rt := rts.RouteTables[0]
	defaults := 0
	for _, r := range rt.Routes {
		if aws.ToString(r.DestinationCidrBlock) == "0.0.0.0/0" {
			defaults++
			if aws.ToString(r.GatewayId) != aws.ToString(g.InternetGatewayId) {
				t.Errorf("default route through %s, want the gateway %s", aws.ToString(r.GatewayId), aws.ToString(g.InternetGatewayId))
			}
		}
	}
	if defaults != 1 || len(rt.Associations) != 3 || aws.ToString(rt.VpcId) != vpc {
		t.Errorf("route table: %d default routes, %d associations, in %s; want 1, 3, %s", defaults, len(rt.Associations), aws.ToString(rt.VpcId), vpc)
	}

	sgs, _ := e.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: owned})
	for _, sg := range sgs.SecurityGroups {
		if len(sg.IpPermissions) != 1 || aws.ToString(sg.VpcId) != vpc {
			t.Errorf("group %s: %d rules in %s, want 1 in %s", aws.ToString(sg.GroupName), len(sg.IpPermissions), aws.ToString(sg.VpcId), vpc)
		}
	}

	h := holderOf(t, e)
	vip := tagMap(h.TagSet)[tagEndpointIP]
	if a := eip(t, e); aws.ToString(a.NetworkInterfaceId) != aws.ToString(h.NetworkInterfaceId) || aws.ToString(a.PrivateIpAddress) != vip || vip == "" {
		t.Errorf("Elastic IP on %s/%s, want the endpoint address %q on the holder", aws.ToString(a.NetworkInterfaceId), aws.ToString(a.PrivateIpAddress), vip)
	}
}

// ensureAtOnce runs EnsureInfrastructure from n processes at once and
// checks that they agree.
func ensureAtOnce(t *testing.T, e *env, n int) {
	t.Helper()
	ps := make([]*provider, n)
	for i := range ps {
		ps[i] = e.restart(t)
	}
	infras := make([]providers.Infrastructure, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			infras[i], errs[i] = p.EnsureInfrastructure(context.Background())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if !reflect.DeepEqual(infras[i], infras[0]) {
			t.Errorf("callers disagree: %+v and %+v", infras[0], infras[i])
		}
	}
}

func TestConcurrentEnsureInfrastructureLeavesOneOfEverything(t *testing.T) {
	for _, tc := range []struct {
		name    string
		callers int
		env     func(t *testing.T) *env
	}{
		{"4 callers", 4, func(t *testing.T) *env { return newEnv(t) }},
		{"8 callers", 8, func(t *testing.T) *env { return newEnv(t) }},
		{"4 callers, EC2 slow to know new IDs", 4, func(t *testing.T) *env {
			e := newEnv(t)
			e.ec2.NetworkVisibilityDelay = 3 * time.Second
			return e
		}},
		{"4 callers through the SDK", 4, func(t *testing.T) *env { return newHTTPEnv(t).env }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := 0; round < 10; round++ {
				e := tc.env(t)
				ensureAtOnce(t, e, tc.callers)
				checkOneOfEach(t, e)

				// Later, nothing is written, and destroy finds everything.
				e.ec2.ResetCalls()
				e.p = e.restart(t)
				e.ensure(t)
				if got := createCalls(e.ec2); len(got) != 0 {
					t.Fatalf("a later Ensure wrote: %v", got)
				}
				if err := e.p.DestroyInfrastructure(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := e.ec2.Resources(); len(got) != 0 {
					t.Fatalf("left after destroy: %v", got)
				}
			}
		})
	}
}

// racingEC2 is EC2 where another caller gets in at a chosen moment: a hook
// runs once, just before or just after the provider's first call of an
// operation.
type racingEC2 struct {
	*fake.EC2
	mu            sync.Mutex
	before, after map[string]func()
}

func (r *racingEC2) take(m map[string]func(), op string) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := m[op]
	delete(m, op)
	if f == nil {
		return func() {}
	}
	return f
}

func race[O any](r *racingEC2, op string, call func() (O, error)) (O, error) {
	r.take(r.before, op)()
	out, err := call()
	r.take(r.after, op)()
	return out, err
}

func (r *racingEC2) CreateVpc(ctx context.Context, in *ec2.CreateVpcInput, o ...func(*ec2.Options)) (*ec2.CreateVpcOutput, error) {
	return race(r, "CreateVpc", func() (*ec2.CreateVpcOutput, error) { return r.EC2.CreateVpc(ctx, in, o...) })
}

func (r *racingEC2) CreateInternetGateway(ctx context.Context, in *ec2.CreateInternetGatewayInput, o ...func(*ec2.Options)) (*ec2.CreateInternetGatewayOutput, error) {
	return race(r, "CreateInternetGateway", func() (*ec2.CreateInternetGatewayOutput, error) { return r.EC2.CreateInternetGateway(ctx, in, o...) })
}

func (r *racingEC2) CreateSubnet(ctx context.Context, in *ec2.CreateSubnetInput, o ...func(*ec2.Options)) (*ec2.CreateSubnetOutput, error) {
	return race(r, "CreateSubnet", func() (*ec2.CreateSubnetOutput, error) { return r.EC2.CreateSubnet(ctx, in, o...) })
}

func (r *racingEC2) CreateRoute(ctx context.Context, in *ec2.CreateRouteInput, o ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error) {
	return race(r, "CreateRoute", func() (*ec2.CreateRouteOutput, error) { return r.EC2.CreateRoute(ctx, in, o...) })
}

func (r *racingEC2) AssociateRouteTable(ctx context.Context, in *ec2.AssociateRouteTableInput, o ...func(*ec2.Options)) (*ec2.AssociateRouteTableOutput, error) {
	return race(r, "AssociateRouteTable", func() (*ec2.AssociateRouteTableOutput, error) { return r.EC2.AssociateRouteTable(ctx, in, o...) })
}

func (r *racingEC2) CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, o ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	return race(r, "CreateSecurityGroup", func() (*ec2.CreateSecurityGroupOutput, error) { return r.EC2.CreateSecurityGroup(ctx, in, o...) })
}

func (r *racingEC2) AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, o ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return race(r, "AuthorizeSecurityGroupIngress", func() (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
		return r.EC2.AuthorizeSecurityGroupIngress(ctx, in, o...)
	})
}

func (r *racingEC2) AllocateAddress(ctx context.Context, in *ec2.AllocateAddressInput, o ...func(*ec2.Options)) (*ec2.AllocateAddressOutput, error) {
	return race(r, "AllocateAddress", func() (*ec2.AllocateAddressOutput, error) { return r.EC2.AllocateAddress(ctx, in, o...) })
}

// racing returns a provider whose EC2 is e's with r in front.
func racing(t *testing.T, e *env) (*provider, *racingEC2) {
	t.Helper()
	r := &racingEC2{EC2: e.ec2, before: map[string]func(){}, after: map[string]func(){}}
	opts := e.opts
	opts.EC2 = r
	p, err := newProvider(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, r
}

// The lost race of each step: just before the provider makes something,
// another caller makes the whole infrastructure. The provider's write
// then fails, or what it made loses; either way it uses the other's, and
// deletes what it made itself, and nothing else.
func TestEnsureInfrastructureThatLosesARaceUsesTheWinnerAndDeletesItsOwn(t *testing.T) {
	for _, tc := range []struct {
		op string
		// deletes is how the loser removes what it made; "" when the
		// write that lost failed, and there is nothing to remove.
		deletes string
	}{
		{"CreateVpc", "DeleteVpc"},
		{"CreateInternetGateway", "DeleteInternetGateway"},
		{"CreateSubnet", ""},
		{"CreateRoute", ""},
		{"AssociateRouteTable", ""},
		{"CreateSecurityGroup", ""},
		{"AuthorizeSecurityGroupIngress", ""},
		{"AllocateAddress", "ReleaseAddress"},
	} {
		t.Run(tc.op, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			ours, r := racing(t, e)
			other := e.restart(t)
			var theirs providers.Infrastructure
			r.before[tc.op] = func() {
				var err error
				if theirs, err = other.EnsureInfrastructure(ctx); err != nil {
					t.Errorf("the other caller: %v", err)
				}
			}
			e.ec2.ResetCalls()
			infra, err := ours.EnsureInfrastructure(ctx)
			if err != nil {
				t.Fatalf("EnsureInfrastructure after losing at %s: %v", tc.op, err)
			}
			if len(r.before) != 0 {
				t.Fatalf("the provider never called %s", tc.op)
			}
			if !reflect.DeepEqual(infra, theirs) {
				t.Errorf("the loser reports %+v, the winner %+v", infra, theirs)
			}
			if ours.net.vpcID != other.net.vpcID || !reflect.DeepEqual(ours.net.subnets, other.net.subnets) ||
				ours.net.nodesSG != other.net.nodesSG || ours.net.apiSG != other.net.apiSG || ours.net.ep.holder != other.net.ep.holder {
				t.Errorf("the loser uses %+v, the winner %+v", ours.net, other.net)
			}
			e.p = ours
			checkOneOfEach(t, e)

			deletes := map[string]int{}
			for op, n := range createCalls(e.ec2) {
				if strings.HasPrefix(op, "Delete") || strings.HasPrefix(op, "Release") || strings.HasPrefix(op, "Disassociate") || strings.HasPrefix(op, "Detach") {
					deletes[op] = n
				}
			}
			want := map[string]int{}
			if tc.deletes != "" {
				want[tc.deletes] = 1
			}
			if !reflect.DeepEqual(deletes, want) {
				t.Errorf("deletions = %v, want %v", deletes, want)
			}
			if lostWrite := tc.deletes == ""; lostWrite != strings.Contains(e.logs.String(), "Describing again: another caller wrote first") {
				t.Errorf("a write that lost should start the step again, and only then; logs:\n%s", e.logs.String())
			}
		})
	}
}

// The other side of the race: a VPC another caller makes just after this
// one's has a higher ID, so this caller keeps its own, and leaves the
// other's for the caller that made it.
func TestEnsureInfrastructureThatWinsARaceLeavesTheLosersCreate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ours, r := racing(t, e)
	var late string
	r.after["CreateVpc"] = func() {
		out, err := e.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{
			CidrBlock:         aws.String(vpcCIDR),
			TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeVpc, ours.ownedTags(componentVPC))},
		})
		if err != nil {
			t.Fatal(err)
		}
		late = aws.ToString(out.Vpc.VpcId)
	}
	if _, err := ours.EnsureInfrastructure(ctx); err != nil {
		t.Fatal(err)
	}
	if ours.net.vpcID == late || ours.net.vpcID > late {
		t.Errorf("kept %s over %s, made later", ours.net.vpcID, late)
	}
	if n := e.ec2.Calls("DeleteVpc"); n != 0 {
		t.Errorf("deleted %d VPCs; the later one is its maker's to delete", n)
	}
	if got := e.ec2.Resources()["vpc"]; got != 2 {
		t.Errorf("%d VPCs, want ours and the later one", got)
	}
}

func TestKeptAddressPrefersTheMappedOneThenTheLowestID(t *testing.T) {
	addr := func(id string, mapped bool) types.Address {
		a := types.Address{AllocationId: aws.String(id)}
		if mapped {
			a.AssociationId = aws.String("eipassoc-" + id)
		}
		return a
	}
	for _, tc := range []struct {
		as   []types.Address
		want string
	}{
		{[]types.Address{addr("eipalloc-2", false)}, "eipalloc-2"},
		{[]types.Address{addr("eipalloc-2", false), addr("eipalloc-1", false)}, "eipalloc-1"},
		{[]types.Address{addr("eipalloc-1", false), addr("eipalloc-2", true)}, "eipalloc-2"},
		{[]types.Address{addr("eipalloc-3", true), addr("eipalloc-1", false), addr("eipalloc-2", true)}, "eipalloc-2"},
	} {
		var in []string
		for _, a := range tc.as {
			in = append(in, fmt.Sprintf("%s/%v", aws.ToString(a.AllocationId), a.AssociationId != nil))
		}
		if got := aws.ToString(keptAddress(tc.as).AllocationId); got != tc.want {
			t.Errorf("keptAddress(%v) = %s, want %s", in, got, tc.want)
		}
	}
}
