package aws

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os/exec"
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

func decodeUserData(t testing.TB, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("user data is not gzip: %v", err)
	}
	s, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

func instanceByName(t testing.TB, f *fake.EC2, name string) types.Instance {
	t.Helper()
	var found []types.Instance
	for _, in := range f.LiveInstances() {
		if machineName(tagMap(in.Tags), aws.ToInt32(in.AmiLaunchIndex)) == name {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d live instances are %s, want 1", len(found), name)
	}
	return found[0]
}

func TestCreateMachineTagsIMDSAndUserData(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	stage(t, e.p, "agent", false)
	cp, err := e.p.CreateMachine(ctx, controlPlane("demo-control-plane"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.p.CreateMachine(ctx, worker("demo-workers-abcde"))
	if err != nil {
		t.Fatal(err)
	}
	if cp.Phase != providers.PhasePending || cp.Role != providers.RoleControlPlane || cp.Pool != "control-plane" ||
		!strings.HasPrefix(cp.ProviderID, "aws:///"+testRegion+"a/i-") || cp.InternalIP == "" || cp.MachineType != "t3.medium" {
		t.Errorf("control plane = %+v", cp)
	}

	ci := instanceByName(t, e.ec2, cp.Name)
	wi := instanceByName(t, e.ec2, w.Name)
	tags := tagMap(wi.Tags)
	for k, v := range map[string]string{
		"kubernetes.io/cluster/demo": "owned", "seed.dev/cluster": "demo", "seed.dev/pool": "workers", "seed.dev/role": "worker",
		"seed.dev/machine": "demo-workers-abcde", "seed.dev/kubernetes-version": "v1.34.2", "Name": "demo-workers-abcde",
	} {
		if tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, tags[k], v)
		}
	}
	for _, c := range []struct {
		in   types.Instance
		hops int32
	}{{ci, 2}, {wi, 1}} {
		m := c.in.MetadataOptions
		if m == nil || m.HttpTokens != types.HttpTokensStateRequired || aws.ToInt32(m.HttpPutResponseHopLimit) != c.hops {
			t.Errorf("%s metadata options = %+v, want IMDSv2 required with hop limit %d", aws.ToString(c.in.InstanceId), m, c.hops)
		}
	}
	// The first control plane has an interface of its own, with both
	// groups, and the endpoint address mapped to it.
	vip := strings.TrimSuffix(e.ensure(t).ControlPlaneEndpoint, ":6443")
	if got := aws.ToString(ci.PrivateIpAddress); got == vip {
		t.Errorf("control plane's primary address is the endpoint %s; want a movable secondary address", vip)
	}
	if len(ci.SecurityGroups) != 2 {
		t.Errorf("control plane is in %d security groups, want nodes and api-server", len(ci.SecurityGroups))
	}
	if got := vipInterface(t, e); got != aws.ToString(ci.NetworkInterfaces[0].NetworkInterfaceId) {
		t.Errorf("endpoint address is on %q, want the first control plane's interface", got)
	}
	if !strings.HasSuffix(aws.ToString(ci.IamInstanceProfile.Arn), "/seed-demo-control-plane") ||
		!strings.HasSuffix(aws.ToString(wi.IamInstanceProfile.Arn), "/seed-demo-worker") {
		t.Errorf("instance profiles: %v, %v", ci.IamInstanceProfile, wi.IamInstanceProfile)
	}

	wud := decodeUserData(t, e.ec2.UserData(aws.ToString(wi.InstanceId)))
	for _, want := range []string{
		"https://pkgs.k8s.io/core:/stable:/$K8S_REPO/deb/", "K8S_REPO=v1.34", "K8S_PACKAGE_VERSION=1.34.2",
		`provider_id="aws:///$az/$instance_id"`, `> "$SEED_DIR/provider-id"`, "0) name=demo-workers-abcde; boot=0",
		"write_file '/etc/seed/join.yaml' 0600 ", "write_file /var/lib/seed/bootstrap/script 0700 ", "containerd.io",
		"X-aws-ec2-metadata-token",
	} {
		if !strings.Contains(wud, want) {
			t.Errorf("worker user data lacks %q", want)
		}
	}
	cud := decodeUserData(t, e.ec2.UserData(aws.ToString(ci.InstanceId)))
	if !strings.Contains(cud, "ExecStart=/usr/local/sbin/seed-endpoint "+vip+"\n") || !strings.Contains(cud, "systemctl enable --now seed-endpoint.service") {
		t.Errorf("control-plane user data does not run the endpoint claim for %s", vip)
	}
	if strings.Contains(wud, "seed-endpoint") {
		t.Errorf("worker user data claims the endpoint")
	}
	if !strings.Contains(cud, "images/control-plane/agent.tar") || !strings.Contains(cud, "ctr -n k8s.io images import") {
		t.Errorf("control-plane user data does not import the staged agent image")
	}
	if !strings.Contains(cud, "bootstrap/demo-control-plane") || strings.Contains(cud, "write_file '/etc/seed/init.yaml'") {
		t.Errorf("control-plane bootstrap is inline in user data, want it fetched from the bucket")
	}
	payload, ok := e.s3.Object(bucketName(fake.DefaultAccountID, testRegion, "demo"), "bootstrap/demo-control-plane")
	if !ok || !strings.Contains(string(payload), "write_file '/etc/seed/init.yaml'") {
		t.Errorf("control-plane payload not staged: %q", payload)
	}

	// The join token never reaches the logs, plain or encoded.
	token := "abcdef.0123456789abcdef"
	logs := e.logs.String()
	for _, secret := range []string{token, base64.StdEncoding.EncodeToString([]byte("token: " + token + "\n")), "X-Amz-Signature"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

func TestSameNameYieldsOneInstance(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	first, err := e.p.CreateMachine(ctx, worker("w-1"))
	if err != nil {
		t.Fatal(err)
	}
	// Another process, with no cache, asks for the same name: the same
	// ClientToken returns the same instance.
	again, err := e.restart(t).CreateMachine(ctx, worker("w-1"))
	if err != nil {
		t.Fatal(err)
	}
	if first.ProviderID != again.ProviderID || len(e.ec2.LiveInstances()) != 1 {
		t.Fatalf("two instances for one name: %s, %s", first.ProviderID, again.ProviderID)
	}
	if e.ec2.Calls("RunInstances") != 2 {
		t.Errorf("RunInstances called %d times, want 2 (the second answered by its token)", e.ec2.Calls("RunInstances"))
	}
	// The same process answers from memory without a call.
	e.ec2.ResetCalls()
	if _, err := e.p.CreateMachine(ctx, worker("w-1")); err != nil {
		t.Fatal(err)
	}
	if n := e.ec2.TotalCalls(); n != 0 {
		t.Errorf("asking again in the same process made %d calls", n)
	}
}

func TestCrashBetweenRunInstancesAndRecordingLeavesNoOrphanOrDuplicate(t *testing.T) {
	for _, n := range []int{1, 7} {
		t.Run(fmt.Sprintf("%d machines", n), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.ensure(t)
			e.ec2.VisibilityDelay = 30 * time.Second
			specs := workers("w", n)
			// The instances launch, then the agent dies before it hears back.
			for i := 0; i < min(n, 3); i++ { // one RunInstances per subnet used
				e.ec2.InjectFault("RunInstances", fake.Fault{Err: fake.ServerError("InternalError", "connection reset by peer"), AfterApply: true})
			}
			if _, err := e.p.CreateMachines(ctx, specs); err == nil {
				t.Fatal("CreateMachines succeeded through a lost response")
			}
			launched := len(e.ec2.LiveInstances())
			if launched != n {
				t.Fatalf("%d instances launched, want %d", launched, n)
			}
			// The restarted agent lists (EC2 does not show them yet), then
			// creates what it thinks is missing.
			p := e.restart(t)
			ms, err := p.ListMachines(ctx)
			if err != nil || len(ms) != 0 {
				t.Fatalf("ListMachines = %v, %v; want nothing visible yet", ms, err)
			}
			got, err := p.CreateMachines(ctx, specs)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n || len(e.ec2.LiveInstances()) != n {
				t.Fatalf("got %d machines and %d instances, want %d of each", len(got), len(e.ec2.LiveInstances()), n)
			}
			// Not orphaned: once EC2 catches up, every instance is a named machine.
			e.clock.Advance(time.Minute)
			ms, err = e.restart(t).ListMachines(ctx)
			if err != nil || len(ms) != n {
				t.Fatalf("ListMachines = %d machines, %v; want %d", len(ms), err, n)
			}
			for i, m := range ms {
				if m.Name != specs[i].Name {
					t.Errorf("machine %d is %q, want %q", i, m.Name, specs[i].Name)
				}
			}
		})
	}
}

// reconcile is a minimal executor loop: list, create what is missing,
// wait, until every spec exists. It returns the EC2 calls it took.
func reconcile(t testing.TB, e *env, p *provider, specs []providers.MachineSpec, batch bool) int {
	t.Helper()
	ctx := context.Background()
	before := e.ec2.TotalCalls()
	for round := 0; round < 100; round++ {
		ms, err := p.ListMachines(ctx)
		if err == nil {
			have := map[string]bool{}
			for _, m := range ms {
				have[m.Name] = true
			}
			var missing []providers.MachineSpec
			for _, s := range specs {
				if !have[s.Name] {
					missing = append(missing, s)
				}
			}
			if len(missing) == 0 {
				return e.ec2.TotalCalls() - before
			}
			if batch {
				_, _ = p.CreateMachines(ctx, missing)
			} else {
				for _, s := range missing {
					_, _ = p.CreateMachine(ctx, s)
				}
			}
		}
		e.clock.Advance(10 * time.Second)
	}
	t.Fatalf("did not converge in 100 rounds")
	return 0
}

func TestThrottlingConvergesWithinTwiceTheCalls(t *testing.T) {
	baseline := func() int {
		e := newEnv(t)
		e.ensure(t)
		return reconcile(t, e, e.restart(t), workers("w", 10), true)
	}()
	const seeds = 40
	total, worst := 0, 0
	for seed := int64(1); seed <= seeds; seed++ {
		e := newEnv(t)
		e.ensure(t)
		e.ec2.SetThrottleRate(0.3, seed)
		calls := reconcile(t, e, e.restart(t), workers("w", 10), true)
		total += calls
		worst = max(worst, calls)
		if live := len(e.ec2.LiveInstances()); live != 10 {
			t.Fatalf("seed %d: %d instances, want 10", seed, live)
		}
	}
	mean := float64(total) / seeds
	t.Logf("scale-up of 10: %d calls unthrottled; with 30%% throttling %.1f on average, %d at worst", baseline, mean, worst)
	if mean > 2*float64(baseline) {
		t.Errorf("with 30%% throttling the mean is %.1f calls, over twice the %d unthrottled", mean, baseline)
	}
}

func TestCapacityErrorFallsThroughToNextSubnet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	net, _ := e.p.network(ctx)
	spec := worker("w-1")
	first := net.subnets[hashIndex([]string{spec.Name}, len(net.subnets))]
	e.ec2.SetCapacity(first.az, 0)
	m, err := e.p.CreateMachine(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.ProviderID, "/"+first.az+"/") {
		t.Errorf("machine in %s, which had no capacity", first.az)
	}
	if e.ec2.Calls("RunInstances") != 2 {
		t.Errorf("RunInstances called %d times, want 2", e.ec2.Calls("RunInstances"))
	}

	// Unsupported in one zone, no capacity in the others: KindCapacity.
	for _, s := range net.subnets {
		e.ec2.SetCapacity(s.az, 0)
	}
	e.ec2.SetUnsupported(net.subnets[1].az, "m6i.large")
	e.ec2.ResetCalls()
	_, err = e.p.CreateMachine(ctx, worker("w-2"))
	if !providers.IsCapacity(err) {
		t.Fatalf("err = %v, want KindCapacity", err)
	}
	if e.ec2.Calls("RunInstances") != 3 {
		t.Errorf("RunInstances called %d times, want one per subnet", e.ec2.Calls("RunInstances"))
	}

	// A zone that launches some of a batch sends the rest on.
	e2 := newEnv(t)
	e2.ensure(t)
	e2.ec2.SetCapacity(testRegion+"a", 1)
	e2.ec2.SetCapacity(testRegion+"b", 0)
	ms, err := e2.p.CreateMachines(ctx, workers("x", 6))
	if err != nil || len(ms) != 6 || len(e2.ec2.LiveInstances()) != 6 {
		t.Fatalf("got %d machines, %d instances, %v; want 6", len(ms), len(e2.ec2.LiveInstances()), err)
	}
	perZone := map[string]int{}
	for _, in := range e2.ec2.LiveInstances() {
		perZone[aws.ToString(in.Placement.AvailabilityZone)]++
	}
	if perZone[testRegion+"a"] != 1 || perZone[testRegion+"b"] != 0 || perZone[testRegion+"c"] != 5 {
		t.Errorf("instances per zone = %v", perZone)
	}
	// Restarted, every name resolves: the partial launch's names survive.
	got, _ := e2.restart(t).ListMachines(ctx)
	if len(got) != 6 {
		t.Errorf("listed %d machines after restart, want 6: %+v", len(got), got)
	}
}

func TestScaleUpCallsAndBatchNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	p := e.restart(t)
	// Warm: the agent found the network and image on its first scale-up.
	if _, err := p.CreateMachines(ctx, workers("warm", 1)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 10, 50} {
		e.ec2.ResetCalls()
		specs := workers(fmt.Sprintf("n%d", n), n)
		ms, err := p.CreateMachines(ctx, specs)
		if err != nil || len(ms) != n {
			t.Fatalf("CreateMachines(%d) = %d, %v", n, len(ms), err)
		}
		if calls, want := e.ec2.TotalCalls(), min(n, 3); calls != want {
			t.Errorf("scale-up of %d: %d EC2 calls (%v), want %d", n, calls, e.ec2.CallLog(), want)
		}
	}
	// Names come back right from tags and launch indexes, in a new process.
	ms, err := e.restart(t).ListMachines(ctx)
	if err != nil || len(ms) != 62 {
		t.Fatalf("ListMachines = %d, %v", len(ms), err)
	}
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Name] || m.Pool != "workers" || m.Role != providers.RoleWorker {
			t.Errorf("bad machine %+v", m)
		}
		seen[m.Name] = true
	}
	for _, s := range workers("n50", 50) {
		if !seen[s.Name] {
			t.Errorf("%s missing", s.Name)
		}
	}
}

func TestIdleListingCostsAtMostTwoCallsAMinute(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	p := e.restart(t)
	if _, err := p.CreateMachines(ctx, workers("w", 3)); err != nil {
		t.Fatal(err)
	}
	_, _ = p.ListMachines(ctx)
	e.ec2.ResetCalls()
	for i := 0; i < 12; i++ { // every 5s for a minute
		if _, err := p.ListMachines(ctx); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(5 * time.Second)
	}
	if n := e.ec2.TotalCalls(); n > 2 {
		t.Errorf("idle minute took %d EC2 calls, want at most 2", n)
	}
	// A write invalidates the cache.
	if err := p.DeleteMachine(ctx, "w-aa"); err != nil {
		t.Fatal(err)
	}
	e.ec2.ResetCalls()
	ms, _ := p.ListMachines(ctx)
	if e.ec2.Calls("DescribeInstances") != 1 {
		t.Errorf("list after a write did not describe")
	}
	for _, m := range ms {
		if m.Name == "w-aa" && m.Phase != providers.PhaseDeleting {
			t.Errorf("deleted machine is %s", m.Phase)
		}
	}
}

func TestJustLaunchedIsPendingAndCanBeDeleted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	e.ec2.VisibilityDelay = 8 * time.Second
	if _, err := e.p.CreateMachine(ctx, worker("w-1")); err != nil {
		t.Fatal(err)
	}
	ms, err := e.p.ListMachines(ctx)
	if err != nil || len(ms) != 1 || ms[0].Phase != providers.PhasePending {
		t.Fatalf("ListMachines = %+v, %v; want w-1 Pending though EC2 does not show it yet", ms, err)
	}
	// Terminating an ID EC2 does not know everywhere yet: retried.
	if err := e.p.DeleteMachine(ctx, "w-1"); err != nil {
		t.Fatal(err)
	}
	if e.ec2.Calls("TerminateInstances") < 2 {
		t.Errorf("TerminateInstances called %d times, want a retry after InvalidInstanceID.NotFound", e.ec2.Calls("TerminateInstances"))
	}
	if live := e.ec2.LiveInstances(); len(live) != 0 {
		t.Errorf("%d instances still live", len(live))
	}
	ms, _ = e.p.ListMachines(ctx)
	if len(ms) != 1 || ms[0].Phase != providers.PhaseDeleting {
		t.Errorf("after delete: %+v", ms)
	}
	// Deleting what does not exist is success.
	if err := e.p.DeleteMachine(ctx, "nope"); err != nil {
		t.Errorf("DeleteMachine(nope) = %v", err)
	}
}

func TestRecreateAfterDeleteGetsANewInstance(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	first, err := e.p.CreateMachine(ctx, worker("w-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.p.DeleteMachine(ctx, "w-1"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Minute) // terminated; EC2 still remembers the token
	again, err := e.restart(t).CreateMachine(ctx, worker("w-1"))
	if err != nil {
		t.Fatal(err)
	}
	if again.ProviderID == first.ProviderID || len(e.ec2.LiveInstances()) != 1 {
		t.Fatalf("recreate returned the terminated instance: %s", again.ProviderID)
	}
	in := instanceByName(t, e.ec2, "w-1")
	if !strings.HasSuffix(aws.ToString(in.ClientToken), "-g1") {
		t.Errorf("token %s, want the next generation", aws.ToString(in.ClientToken))
	}
}

func TestDuplicateInstancesAreReaped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	m, err := e.p.CreateMachine(ctx, worker("w-1"))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	// Another launch claims the same name (a racing process with another token).
	orig := instanceByName(t, e.ec2, "w-1")
	_, err = e.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: orig.ImageId, InstanceType: orig.InstanceType, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: orig.SubnetId, SecurityGroupIds: []string{aws.ToString(orig.SecurityGroups[0].GroupId)},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: orig.Tags}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := e.restart(t).ListMachines(ctx)
	if err != nil || len(ms) != 1 || ms[0].ProviderID != m.ProviderID {
		t.Fatalf("ListMachines = %+v, %v; want the older instance only", ms, err)
	}
	if live := e.ec2.LiveInstances(); len(live) != 1 || aws.ToString(live[0].InstanceId) != aws.ToString(orig.InstanceId) {
		t.Errorf("the newer duplicate was not terminated")
	}
}

func TestControlPlaneLaunchWaitsForInstanceProfile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	visibleAt := e.clock.Now().Add(9 * time.Second)
	e.ec2.ProfileExists = func(string) bool { return !e.clock.Now().Before(visibleAt) }
	if _, err := e.p.CreateMachine(ctx, controlPlane("demo-control-plane")); err != nil {
		t.Fatal(err)
	}
	if n := e.ec2.Calls("RunInstances"); n < 2 {
		t.Errorf("RunInstances called %d times, want retries while IAM propagates", n)
	}
	// A lost answer, then a retry whose presigned URLs differ: EC2 says
	// IdempotentParameterMismatch and the provider adopts the instance.
	e2 := newEnv(t)
	e2.ensure(t)
	e2.ec2.InjectFault("RunInstances", fake.Fault{Err: fake.ServerError("InternalError", "reset"), AfterApply: true})
	if _, err := e2.p.CreateMachine(ctx, controlPlane("demo-control-plane")); err == nil {
		t.Fatal("want an error")
	}
	e2.clock.Advance(time.Minute)
	m, err := e2.p.CreateMachine(ctx, controlPlane("demo-control-plane"))
	if err != nil {
		t.Fatal(err)
	}
	if live := e2.ec2.LiveInstances(); len(live) != 1 || m.ProviderID != providerID(testRegion+"a", aws.ToString(live[0].InstanceId)) {
		t.Errorf("want the one instance adopted, got %+v and %d live", m, len(live))
	}
}

func TestCreateMachineRejectsBadSpecsWithoutCalls(t *testing.T) {
	e := newEnv(t)
	e.ensure(t)
	e.ec2.ResetCalls()
	big := worker("w-big")
	big.Bootstrap.Files = append(big.Bootstrap.Files, providers.File{Path: "/etc/big", Content: randomBytes(40 << 10)})
	for name, s := range map[string]providers.MachineSpec{
		"bad name":      func() providers.MachineSpec { s := worker("W_1"); return s }(),
		"no type":       func() providers.MachineSpec { s := worker("w-1"); s.MachineType = ""; return s }(),
		"bad version":   func() providers.MachineSpec { s := worker("w-1"); s.KubernetesVersion = "1.34"; return s }(),
		"relative path": func() providers.MachineSpec { s := worker("w-1"); s.Bootstrap.Files[0].Path = "etc/x"; return s }(),
		"ours":          func() providers.MachineSpec { s := worker("w-1"); s.Bootstrap.Files[0].Path = providerIDPath; return s }(),
	} {
		if _, err := e.p.CreateMachine(context.Background(), s); !providers.IsInvalid(err) {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		}
	}
	if n := e.ec2.TotalCalls(); n != 0 {
		t.Errorf("%d calls for invalid specs", n)
	}
	if _, err := e.p.CreateMachine(context.Background(), big); !providers.IsInvalid(err) || e.ec2.Calls("RunInstances") != 0 {
		t.Errorf("oversized user data: err = %v, RunInstances = %d", err, e.ec2.Calls("RunInstances"))
	}
}

func TestCreateMachineBeforeInfrastructure(t *testing.T) {
	e := newEnv(t)
	if _, err := e.p.CreateMachine(context.Background(), worker("w-1")); !providers.IsNotFound(err) {
		t.Errorf("err = %v, want NotFound", err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func TestRecreateBatchAfterDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	specs := workers("w", 6) // three launches of two
	if _, err := e.p.CreateMachines(ctx, specs); err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if err := e.p.DeleteMachine(ctx, s.Name); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(5 * time.Minute)
	ms, err := e.restart(t).CreateMachines(ctx, specs)
	if err != nil || len(ms) != 6 {
		t.Fatalf("CreateMachines = %d, %v", len(ms), err)
	}
	if live := e.ec2.LiveInstances(); len(live) != 6 {
		t.Errorf("%d live instances, want 6 new ones", len(live))
	}
	for _, m := range ms {
		if m.Phase != providers.PhasePending {
			t.Errorf("%s is %s, want a new Pending instance", m.Name, m.Phase)
		}
	}
}

func TestUserDataIsValidBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	specs := workers("w", 3)
	specs[1].Bootstrap.Files[0].Content = []byte("another token, with 'quotes' and $(danger)\n")
	specs[2].Bootstrap.Files = append(specs[2].Bootstrap.Files, providers.File{Path: "/etc/it's here", Content: []byte("x")})
	for name, in := range map[string]userDataInput{
		"batch": userDataFor(specs, nil),
		"payload": {Version: "v1.34.2", Names: []string{"cp"}, Boot: []int{0}, PayloadURL: "https://b.s3.amazonaws.com/k?X-Amz-Signature=a&b=c",
			Images: []stagedURL{{name: "agent", url: "https://b/i?x=1&y='2'"}, {name: "network", url: "https://b/n?$(x)"}}, EndpointIP: "10.0.0.5"},
	} {
		ud, err := renderUserData(in)
		if err != nil {
			t.Fatal(err)
		}
		script := decodeUserData(t, base64.StdEncoding.EncodeToString(ud))
		cmd := exec.Command(bash, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: bash -n: %v\n%s", name, err, out)
		}
	}
	// The endpoint claim loop is a file the user data writes: bash -n
	// of the user data does not parse it, so parse it on its own.
	cmd := exec.Command(bash, "-n")
	cmd.Stdin = strings.NewReader(endpointClaimScript)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("endpoint claim script: bash -n: %v\n%s", err, out)
	}
	for _, want := range []string{"network/interfaces/macs/$mac/local-ipv4s", `ip addr add "$vip/32" dev "$dev"`, `ip addr del "$vip/32" dev "$dev"`, "X-aws-ec2-metadata-token"} {
		if !strings.Contains(endpointClaimScript, want) {
			t.Errorf("endpoint claim script lacks %q", want)
		}
	}
	if _, err := renderUserData(userDataInput{Version: "v1.34.2", Names: []string{"cp"}, Boot: []int{0}, Bootstraps: []string{""}, EndpointIP: "10.0.0.5; rm -rf /"}); err == nil {
		t.Error("an endpoint that is not an address reached the user data")
	}
	// The three machines share one bootstrap in user data when theirs are equal.
	same := userDataFor(workers("s", 3), nil)
	if len(same.Bootstraps) != 1 {
		t.Errorf("%d bootstraps for identical machines, want 1", len(same.Bootstraps))
	}
}

func TestOverlappingCallersMakeOneInstancePerName(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	specs := workers("w", 5)
	shared := e.restart(t)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		p := shared
		if i%2 == 0 {
			p = e.restart(t)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.CreateMachines(ctx, specs); err != nil {
				t.Error(err)
			}
			_, _ = p.ListMachines(ctx)
		}()
	}
	wg.Wait()
	if live := e.ec2.LiveInstances(); len(live) != 5 {
		t.Errorf("%d instances for 5 names", len(live))
	}
}

func TestControlPlaneHopLimitOption(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ControlPlaneHopLimit = 1 })
	e.ensure(t)
	if _, err := e.p.CreateMachine(context.Background(), controlPlane("demo-control-plane")); err != nil {
		t.Fatal(err)
	}
	in := instanceByName(t, e.ec2, "demo-control-plane")
	if got := aws.ToInt32(in.MetadataOptions.HttpPutResponseHopLimit); got != 1 {
		t.Errorf("hop limit = %d, want 1", got)
	}
}
