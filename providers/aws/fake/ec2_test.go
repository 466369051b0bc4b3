package fake

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func subnet(t *testing.T, f *EC2, zone string) string {
	ctx := context.Background()
	v, err := f.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, CidrBlock: aws.String("10.0.0.0/20"), AvailabilityZone: aws.String(zone)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(s.Subnet.SubnetId)
}

func TestRunInstancesTokens(t *testing.T) {
	ctx := context.Background()
	f := NewEC2(NewClock(time.Unix(0, 0)), "eu-west-1")
	sub := subnet(t, f, "eu-west-1a")
	in := func(n int32) *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: aws.String("ami-0deb000000000000"), InstanceType: "t3.micro",
			MinCount: aws.Int32(1), MaxCount: aws.Int32(n), SubnetId: aws.String(sub), ClientToken: aws.String("tok")}
	}
	// A failed call does not use up the token.
	f.SetCapacity("eu-west-1a", 0)
	if _, err := f.RunInstances(ctx, in(2)); code(err) != "InsufficientInstanceCapacity" {
		t.Fatalf("err = %v", err)
	}
	f.SetCapacity("eu-west-1a", 1)
	a, err := f.RunInstances(ctx, in(2))
	if err != nil || len(a.Instances) != 1 {
		t.Fatalf("partial launch = %v, %v", a, err)
	}
	b, err := f.RunInstances(ctx, in(2))
	if err != nil || aws.ToString(b.Instances[0].InstanceId) != aws.ToString(a.Instances[0].InstanceId) {
		t.Fatalf("same token launched again: %v, %v", b, err)
	}
	if _, err := f.RunInstances(ctx, in(3)); code(err) != "IdempotentParameterMismatch" {
		t.Errorf("changed parameters: err = %v", err)
	}
	if f.Calls("RunInstances") != 4 || f.TotalCalls() != 6 {
		t.Errorf("calls = %d / %d", f.Calls("RunInstances"), f.TotalCalls())
	}
	f.Reset()
	if f.TotalCalls() != 0 || len(f.Instances()) != 0 || len(f.Resources()) != 0 {
		t.Error("Reset left state")
	}
}

func TestThrottleRateIsDeterministic(t *testing.T) {
	run := func() []bool {
		f := NewEC2(NewClock(time.Unix(0, 0)), "eu-west-1")
		f.SetThrottleRate(0.3, 42)
		var out []bool
		for i := 0; i < 100; i++ {
			_, err := f.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
			out = append(out, code(err) == "RequestLimitExceeded")
		}
		return out
	}
	a, b := run(), run()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different throttling")
		}
		if a[i] {
			n++
		}
	}
	if n < 15 || n > 45 {
		t.Errorf("%d%% throttled, want about 30%%", n)
	}
}

func TestSecondaryAddressMovesAndItsElasticIPFollows(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(time.Unix(0, 0))
	f := NewEC2(clock, "eu-west-1")
	sub := subnet(t, f, "eu-west-1a")
	vpc := aws.ToString(f.subnets[sub].VpcId)
	igw, _ := f.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
	if _, err := f.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: aws.String(vpc)}); err != nil {
		t.Fatal(err)
	}
	holder, err := f.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(sub), SecondaryPrivateIpAddressCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	h := holder.NetworkInterface
	if len(h.PrivateIpAddresses) != 2 || aws.ToBool(h.PrivateIpAddresses[1].Primary) {
		t.Fatalf("addresses = %+v, want a primary and a secondary", h.PrivateIpAddresses)
	}
	vip := aws.ToString(h.PrivateIpAddresses[1].PrivateIpAddress)
	eip, _ := f.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if _, err := f.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: eip.AllocationId, NetworkInterfaceId: h.NetworkInterfaceId, PrivateIpAddress: aws.String(vip)}); err != nil {
		t.Fatal(err)
	}
	run, err := f.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0deb000000000000"), InstanceType: "t3.micro",
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(sub)})
	if err != nil {
		t.Fatal(err)
	}
	inst := run.Instances[0]
	to := inst.NetworkInterfaces[0].NetworkInterfaceId
	where := func() (eni, eipENI, eipIP string) {
		out, _ := f.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("addresses.private-ip-address"), Values: []string{vip}}}})
		if len(out.NetworkInterfaces) == 1 {
			eni = aws.ToString(out.NetworkInterfaces[0].NetworkInterfaceId)
		}
		as, _ := f.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
		return eni, aws.ToString(as.Addresses[0].NetworkInterfaceId), aws.ToString(as.Addresses[0].PrivateIpAddress)
	}

	move := func(eni *string, allow bool) error {
		_, err := f.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{vip}, AllowReassignment: aws.Bool(allow)})
		return err
	}
	if err := move(to, false); code(err) != "InvalidParameterValue" {
		t.Errorf("taking a held address without AllowReassignment = %v", err)
	}
	if err := move(to, true); err != nil {
		t.Fatal(err)
	}
	if eni, eipENI, eipIP := where(); eni != aws.ToString(to) || eipENI != aws.ToString(to) || eipIP != vip {
		t.Errorf("after the move: address on %s, Elastic IP on %s/%s; want both on %s", eni, eipENI, eipIP, aws.ToString(to))
	}
	if err := move(to, false); err != nil {
		t.Errorf("assigning an address the interface already has = %v", err)
	}
	if _, err := f.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: h.NetworkInterfaceId,
		PrivateIpAddresses: []string{aws.ToString(inst.PrivateIpAddress)}, AllowReassignment: aws.Bool(true)}); code(err) != "InvalidParameterValue" {
		t.Errorf("moving a primary address = %v", err)
	}

	// Terminating the instance deletes its interface: the address goes
	// back to the subnet and the Elastic IP is unmapped.
	if _, err := f.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(inst.InstanceId)}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultTerminateDelay)
	if eni, eipENI, _ := where(); eni != "" || eipENI != "" {
		t.Errorf("after termination: address on %q, Elastic IP on %q; want both free", eni, eipENI)
	}
	if err := move(h.NetworkInterfaceId, false); err != nil {
		t.Errorf("reclaiming a free address = %v", err)
	}
}

// What two callers racing to build one network run into: EC2 lets a VPC
// have one internet gateway, routes only through a gateway attached to the
// table's VPC, and maps one Elastic IP to an address.
func TestOneGatewayPerVPCAndOneElasticIPPerAddress(t *testing.T) {
	ctx := context.Background()
	f := NewEC2(NewClock(time.Unix(0, 0)), "eu-west-1")
	sub := subnet(t, f, "eu-west-1a")
	vpc := f.subnets[sub].VpcId
	gw := func() *string {
		g, err := f.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
		if err != nil {
			t.Fatal(err)
		}
		return g.InternetGateway.InternetGatewayId
	}
	first, second := gw(), gw()
	rt, err := f.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: vpc})
	if err != nil {
		t.Fatal(err)
	}
	route := func(g *string) error {
		_, err := f.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTable.RouteTableId, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: g})
		return err
	}
	if err := route(first); code(err) != "InvalidParameterValue" {
		t.Errorf("a route through a detached gateway = %v, want InvalidParameterValue", err)
	}
	if _, err := f.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: first, VpcId: vpc}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: first, VpcId: vpc}); code(err) != "Resource.AlreadyAssociated" {
		t.Errorf("attaching an attached gateway = %v, want Resource.AlreadyAssociated", err)
	}
	if _, err := f.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: second, VpcId: vpc}); code(err) != "InvalidParameterValue" {
		t.Errorf("a second gateway on the VPC = %v, want InvalidParameterValue", err)
	}
	if err := route(second); code(err) != "InvalidParameterValue" {
		t.Errorf("a route through a gateway of no network = %v, want InvalidParameterValue", err)
	}
	if err := route(first); err != nil {
		t.Errorf("a route through the attached gateway = %v", err)
	}

	ni, err := f.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(sub)})
	if err != nil {
		t.Fatal(err)
	}
	var allocs []*string
	for range 2 {
		a, _ := f.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
		if _, err := f.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a.AllocationId, NetworkInterfaceId: ni.NetworkInterface.NetworkInterfaceId}); err != nil {
			t.Fatal(err)
		}
		allocs = append(allocs, a.AllocationId)
	}
	as, _ := f.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{aws.ToString(allocs[0]), aws.ToString(allocs[1])}})
	if len(as.Addresses) != 2 || as.Addresses[0].AssociationId != nil || as.Addresses[1].AssociationId == nil {
		t.Errorf("after a second Elastic IP on the address: %+v, want the first unmapped and still allocated", as.Addresses)
	}
}
