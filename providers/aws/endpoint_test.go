package aws

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws/fake"
)

// vipInterface is the interface EC2 maps the endpoint address to now, as
// the holder's tag names it; "" when none.
func vipInterface(t testing.TB, e *env) string {
	t.Helper()
	ctx := context.Background()
	hs, err := e.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: e.p.ownedFilters(filter("tag:"+tagComponent, componentEndpoint)),
	})
	if err != nil || len(hs.NetworkInterfaces) != 1 {
		t.Fatalf("endpoint holders: %v, %v", hs, err)
	}
	vip := tagMap(hs.NetworkInterfaces[0].TagSet)[tagEndpointIP]
	if vip == "" {
		t.Fatal("the holder is not tagged with the endpoint address")
	}
	out, err := e.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{filter("addresses.private-ip-address", vip)},
	})
	if err != nil || len(out.NetworkInterfaces) > 1 {
		t.Fatalf("interfaces with %s: %v, %v", vip, out, err)
	}
	if len(out.NetworkInterfaces) == 0 {
		return ""
	}
	return aws.ToString(out.NetworkInterfaces[0].NetworkInterfaceId)
}

func holderOf(t testing.TB, e *env) types.NetworkInterface {
	t.Helper()
	hs, err := e.ec2.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: e.p.ownedFilters(filter("tag:"+tagComponent, componentEndpoint)),
	})
	if err != nil || len(hs.NetworkInterfaces) != 1 {
		t.Fatalf("%d endpoint holders, want 1 (%v)", len(hs.NetworkInterfaces), err)
	}
	return hs.NetworkInterfaces[0]
}

func primaryENI(t testing.TB, e *env, machine string) string {
	t.Helper()
	return aws.ToString(instanceByName(t, e.ec2, machine).NetworkInterfaces[0].NetworkInterfaceId)
}

func eip(t testing.TB, e *env) types.Address {
	t.Helper()
	out, err := e.ec2.DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{})
	if err != nil || len(out.Addresses) != 1 {
		t.Fatalf("%d Elastic IPs, want 1 (%v)", len(out.Addresses), err)
	}
	return out.Addresses[0]
}

func TestEndpointAddressIsReservedOnceByConcurrentCallers(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	infras := make([]providers.Infrastructure, 4)
	errs := make([]error, 4)
	for i := range infras {
		p := e.restart(t)
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
		if infras[i].ControlPlaneEndpoint != infras[0].ControlPlaneEndpoint {
			t.Errorf("callers disagree on the endpoint: %q and %q", infras[0].ControlPlaneEndpoint, infras[i].ControlPlaneEndpoint)
		}
	}
	h := holderOf(t, e)
	vip := tagMap(h.TagSet)[tagEndpointIP]
	if infras[0].ControlPlaneEndpoint != vip+":6443" || vip == aws.ToString(h.PrivateIpAddress) {
		t.Errorf("endpoint %q, holder tagged %q with primary %s: want the holder's secondary address", infras[0].ControlPlaneEndpoint, vip, aws.ToString(h.PrivateIpAddress))
	}
	if h.Attachment != nil {
		t.Errorf("the holder is attached to %s; it must never be", aws.ToString(h.Attachment.InstanceId))
	}
	if got := vipInterface(t, e); got != aws.ToString(h.NetworkInterfaceId) {
		t.Errorf("before any control plane the address is on %q, want the holder", got)
	}
	if a := eip(t, e); aws.ToString(a.PrivateIpAddress) != vip || aws.ToString(a.NetworkInterfaceId) != aws.ToString(h.NetworkInterfaceId) {
		t.Errorf("Elastic IP mapped to %s on %s, want the endpoint address on the holder", aws.ToString(a.PrivateIpAddress), aws.ToString(a.NetworkInterfaceId))
	}
	if got := infras[0].CertSANs; len(got) != 2 || got[0] != vip {
		t.Errorf("CertSANs = %v, want the endpoint address and the Elastic IP", got)
	}
	if got := e.ec2.Resources()["network-interface"]; got != 1 {
		t.Errorf("%d interfaces, want the holder only", got)
	}
	// And once more, later: nothing is written.
	e.ec2.ResetCalls()
	e.p = e.restart(t)
	e.ensure(t)
	if got := createCalls(e.ec2); len(got) != 0 {
		t.Errorf("a later Ensure wrote: %v", got)
	}
}

// The surge an upgrade makes: a second control plane joins, takes the
// endpoint, and the first is deleted; the address and its Elastic IP stay.
func TestControlPlaneReplacementMovesTheEndpointAndKeepsIt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	infra := e.ensure(t)
	vip := strings.TrimSuffix(infra.ControlPlaneEndpoint, ":6443")
	public := eip(t, e).PublicIp
	if _, err := e.p.CreateMachine(ctx, controlPlane("demo-cp-old")); err != nil {
		t.Fatal(err)
	}
	old := primaryENI(t, e, "demo-cp-old")
	if got := vipInterface(t, e); got != old {
		t.Fatalf("endpoint on %q after the first control plane, want its interface %s", got, old)
	}

	// The agent, in its own process, surges: the new control plane joins
	// through the endpoint, which stays with the old one meanwhile.
	agent := e.restart(t)
	if _, err := agent.CreateMachine(ctx, controlPlane("demo-cp-new")); err != nil {
		t.Fatal(err)
	}
	newENI := primaryENI(t, e, "demo-cp-new")
	if got := vipInterface(t, e); got != old {
		t.Fatalf("creating a second control plane moved the endpoint to %q; it must stay on %s until MoveEndpoint", got, old)
	}
	e.clock.Advance(fake.DefaultBootDelay)

	for i := 0; i < 2; i++ { // the second time, a retry, is a no-op
		e.ec2.ResetCalls()
		if err := agent.MoveEndpoint(ctx, "demo-cp-new"); err != nil {
			t.Fatalf("MoveEndpoint: %v", err)
		}
		if got := vipInterface(t, e); got != newENI {
			t.Fatalf("endpoint on %q after MoveEndpoint, want %s", got, newENI)
		}
		if a := eip(t, e); aws.ToString(a.NetworkInterfaceId) != newENI || aws.ToString(a.PrivateIpAddress) != vip {
			t.Errorf("Elastic IP on %s/%s, want it to follow the address to %s", aws.ToString(a.NetworkInterfaceId), aws.ToString(a.PrivateIpAddress), newENI)
		}
	}
	if got := e.ec2.Calls("AssignPrivateIpAddresses"); got != 0 {
		t.Errorf("moving to where the endpoint already is made %d assignments", got)
	}

	// Deleting the old control plane leaves the endpoint where it is.
	if err := agent.DeleteMachine(ctx, "demo-cp-old"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(fake.DefaultTerminateDelay)
	if got := vipInterface(t, e); got != newENI {
		t.Errorf("endpoint on %q after the old control plane went, want %s", got, newENI)
	}
	again, err := e.restart(t).EnsureInfrastructure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.ControlPlaneEndpoint != infra.ControlPlaneEndpoint || again.ExternalEndpoint != infra.ExternalEndpoint ||
		aws.ToString(eip(t, e).PublicIp) != aws.ToString(public) {
		t.Errorf("endpoints moved across the replacement: %+v, then %+v", infra, again)
	}

	if err := agent.MoveEndpoint(ctx, "demo-cp-old"); !providers.IsNotFound(err) {
		t.Errorf("MoveEndpoint to a deleted machine = %v, want NotFound", err)
	}
	if _, err := agent.CreateMachine(ctx, worker("demo-w")); err != nil {
		t.Fatal(err)
	}
	if err := agent.MoveEndpoint(ctx, "demo-w"); !providers.IsNotFound(err) {
		t.Errorf("MoveEndpoint to a worker = %v, want NotFound", err)
	}
}

func TestDeletingTheControlPlaneThatHasTheEndpointParksIt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	h := aws.ToString(holderOf(t, e).NetworkInterfaceId)
	if _, err := e.p.CreateMachine(ctx, controlPlane("demo-cp-a")); err != nil {
		t.Fatal(err)
	}
	if err := e.p.DeleteMachine(ctx, "demo-cp-a"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(fake.DefaultTerminateDelay)
	if got := vipInterface(t, e); got != h {
		t.Fatalf("endpoint on %q after its control plane was deleted, want parked on the holder %s", got, h)
	}
	if a := eip(t, e); aws.ToString(a.NetworkInterfaceId) != h {
		t.Errorf("Elastic IP on %q, want it parked with the address", aws.ToString(a.NetworkInterfaceId))
	}
	// The next control plane takes it.
	if _, err := e.p.CreateMachine(ctx, controlPlane("demo-cp-b")); err != nil {
		t.Fatal(err)
	}
	if got, want := vipInterface(t, e), primaryENI(t, e, "demo-cp-b"); got != want {
		t.Errorf("endpoint on %q, want the next control plane's %s", got, want)
	}

	// A parking that fails stops the deletion: the address must not be
	// freed with the interface.
	e.ec2.InjectFault("AssignPrivateIpAddresses", fake.Fault{Err: fake.APIError("UnauthorizedOperation", "not allowed")})
	if err := e.p.DeleteMachine(ctx, "demo-cp-b"); err == nil {
		t.Fatal("DeleteMachine succeeded without parking the endpoint")
	}
	if in := instanceByName(t, e.ec2, "demo-cp-b"); in.State.Name != types.InstanceStateNamePending && in.State.Name != types.InstanceStateNameRunning {
		t.Errorf("the control plane was terminated (%s) although its endpoint could not be parked", in.State.Name)
	}
}

// An instance terminated outside Seed frees the address with its
// interface; EnsureInfrastructure takes it back while it is free.
func TestEnsureInfrastructureTakesBackAFreedEndpoint(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	infra := e.ensure(t)
	if _, err := e.p.CreateMachine(ctx, controlPlane("demo-cp")); err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(instanceByName(t, e.ec2, "demo-cp").InstanceId)
	if _, err := e.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(fake.DefaultTerminateDelay)
	if got := vipInterface(t, e); got != "" {
		t.Fatalf("endpoint on %q after its interface was deleted", got)
	}
	again := e.ensure(t)
	if again.ControlPlaneEndpoint != infra.ControlPlaneEndpoint {
		t.Errorf("endpoint changed: %q then %q", infra.ControlPlaneEndpoint, again.ControlPlaneEndpoint)
	}
	h := aws.ToString(holderOf(t, e).NetworkInterfaceId)
	if got := vipInterface(t, e); got != h {
		t.Errorf("endpoint on %q, want back on the holder %s", got, h)
	}
	if a := eip(t, e); aws.ToString(a.NetworkInterfaceId) != h || aws.ToString(a.PrivateIpAddress)+":6443" != infra.ControlPlaneEndpoint {
		t.Errorf("Elastic IP on %s/%s, want mapped again to the endpoint on the holder", aws.ToString(a.NetworkInterfaceId), aws.ToString(a.PrivateIpAddress))
	}
}

func TestDestroyReleasesTheEndpoint(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	for _, n := range []string{"demo-cp-a", "demo-cp-b"} {
		if _, err := e.p.CreateMachine(ctx, controlPlane(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.p.MoveEndpoint(ctx, "demo-cp-b"); err != nil {
		t.Fatal(err)
	}
	e.p = e.restart(t)
	if err := e.p.DestroyInfrastructure(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.ec2.Resources(); len(got) != 0 {
		t.Errorf("left after destroy: %v", got)
	}
}

// A cluster made before the movable endpoint: its endpoint interface is
// the control plane's device 0 and has no secondary address. It keeps
// working as it did; MoveEndpoint says why it cannot.
func TestClusterWithADeviceZeroEndpointKeepsItAndRefusesToMove(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// What an earlier Seed made: the network, then the endpoint interface.
	e.ensure(t)
	if err := e.p.DestroyInfrastructure(ctx); err != nil {
		t.Fatal(err)
	}
	e.p = e.restart(t)
	n := &network{}
	var err error
	if n.vpcID, err = e.p.ensureVPC(ctx); err != nil {
		t.Fatal(err)
	}
	igw, err := e.p.ensureInternetGateway(ctx, n.vpcID)
	if err != nil {
		t.Fatal(err)
	}
	zones, _ := e.p.zones(ctx)
	if n.subnets, err = e.p.ensureSubnets(ctx, n.vpcID, zones); err != nil {
		t.Fatal(err)
	}
	if err := e.p.ensureRouteTable(ctx, n.vpcID, igw, n.subnets); err != nil {
		t.Fatal(err)
	}
	if n.nodesSG, n.apiSG, err = e.p.ensureSecurityGroups(ctx, n.vpcID); err != nil {
		t.Fatal(err)
	}
	legacy, err := e.ec2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(n.subnets[0].id), Groups: []string{n.nodesSG, n.apiSG},
		TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeNetworkInterface, e.p.ownedTags(componentEndpoint))},
	})
	if err != nil {
		t.Fatal(err)
	}
	primary := aws.ToString(legacy.NetworkInterface.PrivateIpAddress)

	e.p = e.restart(t)
	infra := e.ensure(t)
	if infra.ControlPlaneEndpoint != primary+":6443" {
		t.Errorf("endpoint = %q, want the existing interface's %s kept", infra.ControlPlaneEndpoint, primary)
	}
	if !strings.Contains(e.logs.String(), "cannot move to a replacement control plane") {
		t.Errorf("the device-0 endpoint is not reported")
	}
	if _, err := e.p.CreateMachine(ctx, controlPlane("demo-control-plane")); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(instanceByName(t, e.ec2, "demo-control-plane").PrivateIpAddress); got != primary {
		t.Errorf("control plane at %s, want on the existing endpoint interface %s", got, primary)
	}
	err = e.p.MoveEndpoint(ctx, "demo-control-plane")
	if !providers.IsInvalid(err) || !strings.Contains(err.Error(), "cannot move") {
		t.Errorf("MoveEndpoint on a device-0 endpoint = %v, want Invalid saying why", err)
	}
	if err := e.p.DeleteMachine(ctx, "demo-control-plane"); err != nil {
		t.Errorf("DeleteMachine: %v", err)
	}
}

// A crash between making the holder and tagging it with its address: the
// address has not moved yet, so the next run reads it off the holder.
func TestEndpointHolderTaggedOnResume(t *testing.T) {
	e := newEnv(t)
	e.ec2.InjectFault("CreateTags", fake.Fault{Err: fake.ServerError("InternalError", "connection reset")})
	if _, err := e.p.EnsureInfrastructure(context.Background()); !providers.IsTransient(err) {
		t.Fatalf("Ensure = %v, want Transient", err)
	}
	e.p = e.restart(t)
	infra := e.ensure(t)
	h := holderOf(t, e)
	if vip := tagMap(h.TagSet)[tagEndpointIP]; vip == "" || infra.ControlPlaneEndpoint != vip+":6443" {
		t.Errorf("endpoint %q, holder tag %q", infra.ControlPlaneEndpoint, vip)
	}
	if got := e.ec2.Resources()["network-interface"]; got != 1 {
		t.Errorf("%d interfaces, want one holder", got)
	}
}
