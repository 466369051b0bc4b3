package aws

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws/ec2server"
	"github.com/seedhq/seed/providers/aws/fake"
)

// httpEnv is env with EC2 reached through the real SDK, over HTTP, to an
// in-process server speaking the EC2 Query protocol. IAM, S3 and STS stay
// fakes behind the narrow interfaces.
type httpEnv struct {
	*env
	server *ec2server.Server
	url    string
}

func newHTTPEnv(t testing.TB, mods ...func(*Options)) *httpEnv {
	t.Helper()
	e := newEnv(t, mods...)
	srv := ec2server.New(e.ec2)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	cfg := aws.Config{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(hs.URL),
		HTTPClient:   hs.Client(),
	}
	e.opts.EC2 = nil
	e.opts.Config = &cfg
	e.opts.RetryMaxBackoff = 2 * time.Millisecond
	e.p = e.restart(t)
	return &httpEnv{env: e, server: srv, url: hs.URL}
}

func TestSDKOverHTTPFullLifecycle(t *testing.T) {
	h := newHTTPEnv(t, func(o *Options) { o.PageSize = 5 })
	ctx := context.Background()
	if err := h.p.Preflight(ctx); err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	infra, err := h.p.EnsureInfrastructure(ctx)
	if err != nil {
		t.Fatalf("EnsureInfrastructure: %v", err)
	}
	if infra.ExternalEndpoint != "203.0.113.1:6443" {
		t.Errorf("infra = %+v", infra)
	}
	stage(t, h.p, "agent", false)
	stage(t, h.p, "network", true)
	cp, err := h.p.CreateMachine(ctx, controlPlane("demo-control-plane"))
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	// Workers come from the agent, a process that staged nothing: it finds
	// the network image in the bucket.
	ms, err := h.restart(t).CreateMachines(ctx, workers("w", 12))
	if err != nil || len(ms) != 12 {
		t.Fatalf("CreateMachines = %d, %v", len(ms), err)
	}
	for name, want := range map[string]string{cp.Name: "agent,network", "w-aa": "network"} {
		names, _ := imports(decodeUserData(t, h.ec2.UserData(aws.ToString(instanceByName(t, h.ec2, name).InstanceId))))
		if got := strings.Join(names, ","); got != want {
			t.Errorf("%s imports %s, want %s", name, got, want)
		}
	}

	// A fresh process pages through DescribeInstances 5 at a time.
	p := h.restart(t)
	h.server.ResetRequests()
	listed, err := p.ListMachines(ctx)
	if err != nil || len(listed) != 13 {
		t.Fatalf("ListMachines = %d, %v", len(listed), err)
	}
	if n := h.server.Operations("DescribeInstances"); n != 3 {
		t.Errorf("DescribeInstances calls = %d, want 3 pages of 5", n)
	}
	for _, m := range listed {
		if m.Name == cp.Name && (m.ProviderID != cp.ProviderID || m.Role != providers.RoleControlPlane || m.CreatedAt.IsZero()) {
			t.Errorf("control plane read back as %+v, launched as %+v", m, cp)
		}
	}

	if err := p.DeleteMachine(ctx, "w-aa"); err != nil {
		t.Fatal(err)
	}

	// A control-plane replacement, through the SDK's encoding of
	// AssignPrivateIpAddresses and of the interfaces' address lists.
	if _, err := p.CreateMachine(ctx, controlPlane("demo-cp-2")); err != nil {
		t.Fatal(err)
	}
	if err := p.MoveEndpoint(ctx, "demo-cp-2"); err != nil {
		t.Fatalf("MoveEndpoint: %v", err)
	}
	if err := p.DeleteMachine(ctx, cp.Name); err != nil {
		t.Fatal(err)
	}
	if n := h.server.Operations("AssignPrivateIpAddresses"); n != 1 {
		t.Errorf("AssignPrivateIpAddresses calls = %d, want 1 (the move; the deleted control plane no longer had the endpoint)", n)
	}
	vip := strings.TrimSuffix(infra.ControlPlaneEndpoint, ":6443")
	out, err := h.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("addresses.private-ip-address", vip)}})
	if err != nil || len(out.NetworkInterfaces) != 1 ||
		aws.ToString(out.NetworkInterfaces[0].NetworkInterfaceId) != aws.ToString(instanceByName(t, h.ec2, "demo-cp-2").NetworkInterfaces[0].NetworkInterfaceId) {
		t.Errorf("endpoint address %s is not on the new control plane: %v, %v", vip, out, err)
	}
	h.clock.Advance(time.Minute)
	if err := p.DestroyInfrastructure(ctx); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if got := h.ec2.Resources(); len(got) != 0 {
		t.Errorf("left after destroy: %v", got)
	}
}

func TestSDKOverHTTPErrorCodes(t *testing.T) {
	h := newHTTPEnv(t)
	ctx := context.Background()
	c := h.p.ec2
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	if errorCode(err) != codeInvalidInstanceIDNotFound || !providers.IsNotFound(classify("x", err)) {
		t.Errorf("err = %v, want InvalidInstanceID.NotFound classified NotFound", err)
	}
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: h.p.ownedFilters(filter("no-such-filter", "x"))})
	if errorCode(err) != "InvalidParameterValue" || !providers.IsInvalid(classify("x", err)) {
		t.Errorf("err = %v, want InvalidParameterValue classified Invalid", err)
	}
}

func TestSDKOverHTTPThrottlingIsRetriedWithJitter(t *testing.T) {
	run := func(rate float64, seed int64) (requests int, err error) {
		h := newHTTPEnv(t)
		ctx := context.Background()
		if _, err := h.p.EnsureInfrastructure(ctx); err != nil {
			t.Fatal(err)
		}
		p := h.restart(t)
		h.server.SetThrottleRate(rate, seed)
		h.server.ResetRequests()
		if _, err := p.CreateMachines(ctx, workers("w", 10)); err != nil {
			return 0, err
		}
		if _, err := p.ListMachines(ctx); err != nil {
			return 0, err
		}
		if live := len(h.ec2.LiveInstances()); live != 10 {
			t.Errorf("seed %d: %d instances, want 10", seed, live)
		}
		return h.server.TotalRequests(), nil
	}
	base, err := run(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	const seeds = 20
	total, worst := 0, 0
	for seed := int64(1); seed <= seeds; seed++ {
		n, err := run(0.3, seed)
		if err != nil {
			t.Fatalf("seed %d, with 30%% throttling: %v", seed, err)
		}
		total += n
		worst = max(worst, n)
	}
	mean := float64(total) / seeds
	t.Logf("scale-up of 10 plus a list: %d requests unthrottled; with 30%% throttling %.1f on average, %d at worst", base, mean, worst)
	if mean > 2*float64(base) {
		t.Errorf("%.1f requests with throttling, over twice the %d without", mean, base)
	}

	// Throttled on every attempt: the SDK gives up after MaxAttempts and
	// the provider says Throttled.
	h := newHTTPEnv(t, func(o *Options) { o.RetryMaxAttempts = 4 })
	h.server.SetThrottleRate(1, 1)
	_, err = h.p.ListMachines(context.Background())
	if !providers.IsThrottled(err) {
		t.Errorf("err = %v, want Throttled", err)
	}
	if n, ops := h.server.Requests("DescribeInstances"), h.server.Operations("DescribeInstances"); n != 4 || ops != 1 {
		t.Errorf("%d attempts of %d calls, want 4 attempts of 1", n, ops)
	}
}

func TestSDKOverHTTPCapacityIsNotRetriedInPlace(t *testing.T) {
	h := newHTTPEnv(t)
	ctx := context.Background()
	if _, err := h.p.EnsureInfrastructure(ctx); err != nil {
		t.Fatal(err)
	}
	net, _ := h.p.network(ctx)
	spec := worker("w-1")
	first := net.subnets[hashIndex([]string{spec.Name}, len(net.subnets))]
	h.ec2.SetCapacity(first.az, 0)
	h.server.ResetRequests()
	m, err := h.p.CreateMachine(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.ProviderID, first.az) {
		t.Errorf("launched in the zone without capacity")
	}
	// InsufficientInstanceCapacity is a 500: the SDK would retry it in
	// place; the provider's retryer does not, and moves on.
	if n := h.server.Operations("RunInstances"); n != 2 {
		t.Errorf("RunInstances calls = %d, want 2 (one per zone tried)", n)
	}
}

// A 500 after the launch took effect: the SDK retries the same request,
// whose ClientToken makes EC2 answer with the instances already launched.
func TestSDKOverHTTPRetryAfterLostResponseLaunchesOnce(t *testing.T) {
	h := newHTTPEnv(t)
	ctx := context.Background()
	if _, err := h.p.EnsureInfrastructure(ctx); err != nil {
		t.Fatal(err)
	}
	h.ec2.InjectFault("RunInstances",
		fake.Fault{Err: fake.ServerError("InternalError", "An internal error has occurred"), AfterApply: true},
		fake.Fault{Err: fake.ServerError("InternalError", "An internal error has occurred"), AfterApply: true})
	h.server.ResetRequests()
	ms, err := h.p.CreateMachines(ctx, workers("w", 2))
	if err != nil || len(ms) != 2 {
		t.Fatalf("CreateMachines = %v, %v", ms, err)
	}
	if live := h.ec2.LiveInstances(); len(live) != 2 {
		t.Errorf("%d instances, want 2", len(live))
	}
	// Two calls, each retried after its lost answer: at least four
	// requests (the SDK may retry a read it broke itself, see Operations).
	if n, r := h.server.Operations("RunInstances"), h.server.Requests("RunInstances"); n != 2 || r < 4 {
		t.Errorf("RunInstances: %d calls in %d requests, want 2 calls, each retried (4 requests or more)", n, r)
	}
}
