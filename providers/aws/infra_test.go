package aws

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	awsmanifests "github.com/seedhq/seed/manifests/aws"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws/fake"
)

func createCalls(f *fake.EC2) map[string]int {
	out := map[string]int{}
	for _, op := range f.CallLog() {
		if !strings.HasPrefix(op, "Describe") {
			out[op]++
		}
	}
	return out
}

func TestEnsureInfrastructureCreatesOnceAndTagsEverything(t *testing.T) {
	e := newEnv(t)
	infra := e.ensure(t)

	if got := e.ec2.Resources(); !reflect.DeepEqual(got, map[string]int{
		"vpc": 1, "subnet": 3, "internet-gateway": 1, "route-table": 1, "security-group": 2, "network-interface": 1, "elastic-ip": 1,
	}) {
		t.Fatalf("resources = %v", got)
	}
	if !strings.HasPrefix(infra.ControlPlaneEndpoint, "10.0.") || !strings.HasSuffix(infra.ControlPlaneEndpoint, ":6443") {
		t.Errorf("ControlPlaneEndpoint = %q, want the endpoint interface's private IP", infra.ControlPlaneEndpoint)
	}
	if infra.ExternalEndpoint != "203.0.113.1:6443" {
		t.Errorf("ExternalEndpoint = %q, want the Elastic IP", infra.ExternalEndpoint)
	}
	if len(infra.CertSANs) != 2 || infra.CertSANs[1] != "203.0.113.1" {
		t.Errorf("CertSANs = %v", infra.CertSANs)
	}
	if got := e.iam.Roles(); !reflect.DeepEqual(got, []string{"seed-demo-control-plane", "seed-demo-worker"}) {
		t.Errorf("roles = %v", got)
	}
	if got := e.iam.Profiles(); len(got) != 2 {
		t.Errorf("instance profiles = %v", got)
	}
	if got := e.s3.Buckets(); len(got) != 1 || !strings.HasPrefix(got[0], "seed-demo-") {
		t.Errorf("buckets = %v", got)
	}

	// Every EC2 resource carries both ownership tags.
	ctx := context.Background()
	owned := e.p.ownedFilters()
	vpcs, _ := e.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: owned})
	subs, _ := e.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: owned})
	igws, _ := e.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: owned})
	rts, _ := e.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: owned})
	sgs, _ := e.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: owned})
	enis, _ := e.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: owned})
	eips, _ := e.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: owned})
	if len(vpcs.Vpcs) != 1 || len(subs.Subnets) != 3 || len(igws.InternetGateways) != 1 || len(rts.RouteTables) != 1 ||
		len(sgs.SecurityGroups) != 2 || len(enis.NetworkInterfaces) != 1 || len(eips.Addresses) != 1 {
		t.Fatalf("not every resource is found by its ownership tags")
	}
	zones := map[string]bool{}
	for _, s := range subs.Subnets {
		zones[aws.ToString(s.AvailabilityZone)] = true
		if !aws.ToBool(s.MapPublicIpOnLaunch) {
			t.Errorf("subnet %s does not map public IPs", aws.ToString(s.SubnetId))
		}
	}
	if len(zones) != 3 {
		t.Errorf("subnets span %d zones, want 3", len(zones))
	}
	if len(rts.RouteTables[0].Associations) != 3 {
		t.Errorf("route table has %d associations, want 3", len(rts.RouteTables[0].Associations))
	}

	// Least open: nodes accept everything from nodes only; the API server
	// group accepts 6443 only.
	for _, g := range sgs.SecurityGroups {
		c := tagMap(g.Tags)[tagComponent]
		if len(g.IpPermissions) != 1 {
			t.Fatalf("group %s has %d rules, want 1", c, len(g.IpPermissions))
		}
		r := g.IpPermissions[0]
		switch c {
		case componentNodes:
			if aws.ToString(r.IpProtocol) != "-1" || len(r.IpRanges) != 0 || len(r.UserIdGroupPairs) != 1 || aws.ToString(r.UserIdGroupPairs[0].GroupId) != aws.ToString(g.GroupId) {
				t.Errorf("nodes rule = %+v, want all traffic from the group itself only", r)
			}
		case componentAPIServer:
			if aws.ToString(r.IpProtocol) != "tcp" || aws.ToInt32(r.FromPort) != 6443 || aws.ToInt32(r.ToPort) != 6443 || len(r.UserIdGroupPairs) != 0 {
				t.Errorf("api-server rule = %+v, want tcp 6443 only", r)
			}
		}
	}

	// A second Ensure, from the same or a new process, creates nothing.
	for _, p := range []*provider{e.p, e.restart(t)} {
		e.ec2.ResetCalls()
		e.p = p
		again := e.ensure(t)
		if again.ControlPlaneEndpoint != infra.ControlPlaneEndpoint || again.ExternalEndpoint != infra.ExternalEndpoint {
			t.Errorf("second Ensure moved the endpoint: %+v then %+v", infra, again)
		}
		if got := createCalls(e.ec2); len(got) != 0 {
			t.Errorf("second Ensure made writes: %v", got)
		}
		if e.iam.Calls("CreateRole") != 2 || e.iam.Calls("CreateInstanceProfile") != 2 {
			t.Errorf("IAM created again: %d roles, %d profiles", e.iam.Calls("CreateRole"), e.iam.Calls("CreateInstanceProfile"))
		}
	}
}

func TestEnsureInfrastructureResumesAfterPartialFailure(t *testing.T) {
	e := newEnv(t)
	// CreateVpc takes effect but its answer is lost; then a permission
	// error stops the run at the security groups.
	e.ec2.InjectFault("CreateVpc", fake.Fault{Err: fake.ServerError("InternalError", "connection reset"), AfterApply: true})
	if _, err := e.p.EnsureInfrastructure(context.Background()); !providers.IsTransient(err) {
		t.Fatalf("Ensure = %v, want a Transient error", err)
	}
	e.ec2.InjectFault("CreateSecurityGroup", fake.Fault{Err: fake.APIError("UnauthorizedOperation", "not allowed")})
	if _, err := e.p.EnsureInfrastructure(context.Background()); !providers.IsInvalid(err) {
		t.Fatalf("Ensure = %v, want an Invalid error", err)
	}
	e.ensure(t)
	if got := e.ec2.Resources(); got["vpc"] != 1 || got["subnet"] != 3 || got["security-group"] != 2 || got["internet-gateway"] != 1 {
		t.Fatalf("resources after resuming = %v, want one of each, found again by tags", got)
	}
}

func TestEnsureInfrastructureWithSpecVPC(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	vpc, _ := e.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("172.16.0.0/16")})
	s1, _ := e.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("172.16.0.0/24"), AvailabilityZone: aws.String(testRegion + "b")})
	s2, _ := e.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("172.16.1.0/24"), AvailabilityZone: aws.String(testRegion + "a")})
	e.opts.VPCID = aws.ToString(vpc.Vpc.VpcId)
	e.opts.SubnetIDs = []string{aws.ToString(s1.Subnet.SubnetId), aws.ToString(s2.Subnet.SubnetId)}
	e.p = e.restart(t)
	e.ec2.ResetCalls()

	infra := e.ensure(t)
	calls := createCalls(e.ec2)
	for _, op := range []string{"CreateVpc", "CreateSubnet", "CreateInternetGateway", "CreateRouteTable", "AllocateAddress"} {
		if calls[op] != 0 {
			t.Errorf("%s called %d times in a VPC the spec names", op, calls[op])
		}
	}
	if calls["CreateSecurityGroup"] != 2 || calls["CreateNetworkInterface"] != 1 {
		t.Errorf("calls = %v", calls)
	}
	if !strings.HasPrefix(infra.ControlPlaneEndpoint, "172.16.1.") || infra.ExternalEndpoint != infra.ControlPlaneEndpoint {
		t.Errorf("infra = %+v: want the endpoint in the first zone's subnet, and no public address without a gateway", infra)
	}

	// Destroy leaves the user's VPC and subnets alone.
	if err := e.p.DestroyInfrastructure(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.ec2.Resources(); !reflect.DeepEqual(got, map[string]int{"vpc": 1, "subnet": 2}) {
		t.Errorf("after destroy: %v, want the user's VPC and subnets only", got)
	}
}

func TestDestroyRemovesEverythingInOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	stage(t, e.p, "agent", false)
	stage(t, e.p, "network", true)
	if _, err := e.p.CreateMachine(ctx, controlPlane("demo-control-plane")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.CreateMachines(ctx, workers("w", 5)); err != nil {
		t.Fatal(err)
	}
	e.iam.AttachPolicy("seed-demo-worker", "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
	e.clock.Advance(fake.DefaultBootDelay)

	// A new process destroys: nothing is remembered, all is found by tags.
	e.p = e.restart(t)
	if err := e.p.DestroyInfrastructure(ctx); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if got := e.ec2.Resources(); len(got) != 0 {
		t.Errorf("EC2 left: %v", got)
	}
	if len(e.iam.Roles()) != 0 || len(e.iam.Profiles()) != 0 {
		t.Errorf("IAM left: %v %v", e.iam.Roles(), e.iam.Profiles())
	}
	if got := e.s3.Buckets(); len(got) != 0 {
		t.Errorf("S3 left: %v", got)
	}

	// Dependency order, as seen in the calls.
	var order []string
	seen := map[string]bool{}
	for _, op := range e.ec2.CallLog() {
		if (strings.HasPrefix(op, "Delete") || strings.HasPrefix(op, "Terminate") || strings.HasPrefix(op, "Release") || strings.HasPrefix(op, "Detach")) && !seen[op] {
			seen[op] = true
			order = append(order, op)
		}
	}
	want := []string{"TerminateInstances", "ReleaseAddress", "DeleteNetworkInterface", "DetachInternetGateway", "DeleteInternetGateway", "DeleteSubnet", "DeleteRouteTable", "DeleteSecurityGroup", "DeleteVpc"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("deletion order = %v, want %v", order, want)
	}

	// Again: nothing found is success.
	if err := e.p.DestroyInfrastructure(ctx); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestDestroyAggregatesWhatItCouldNotRemove(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	denied := fake.APIError("UnauthorizedOperation", "You are not authorized to perform this operation.")
	e.ec2.InjectFault("DeleteSubnet", fake.Fault{Err: denied}, fake.Fault{Err: denied}, fake.Fault{Err: denied})
	err := e.p.DestroyInfrastructure(ctx)
	if err == nil {
		t.Fatal("Destroy succeeded with subnets it could not delete")
	}
	msg := err.Error()
	if strings.Count(msg, "subnet subnet-") != 3 {
		t.Errorf("error does not name the three subnets: %v", err)
	}
	if !strings.Contains(msg, "VPC vpc-") || !strings.Contains(msg, "route table") {
		t.Errorf("error does not name what the subnets held up: %v", err)
	}
	if !providers.IsInvalid(err) {
		t.Errorf("kind = %s, want Invalid (permission denied will not pass by itself)", providers.KindOf(err))
	}
	if got := e.ec2.Resources(); got["elastic-ip"] != 0 || got["internet-gateway"] != 0 || got["security-group"] != 0 {
		t.Errorf("what could go did not: %v", got)
	}
	if len(e.iam.Roles()) != 0 || len(e.s3.Buckets()) != 0 {
		t.Errorf("IAM or S3 left behind a failed subnet")
	}
	// Run again: it finishes.
	if err := e.p.DestroyInfrastructure(ctx); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	if got := e.ec2.Resources(); len(got) != 0 {
		t.Errorf("left: %v", got)
	}
}

func TestAgentPolicy(t *testing.T) {
	doc, err := agentPolicy("aws", "eu-west-1", "123456789012", "demo", "vpc-0123")
	if err != nil {
		t.Fatal(err)
	}
	var pol struct {
		Statement []struct {
			Sid       string
			Action    any
			Resource  any
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(doc), &pol); err != nil {
		t.Fatal(err)
	}
	bySid := map[string]int{}
	for i, s := range pol.Statement {
		bySid[s.Sid] = i
	}
	term := pol.Statement[bySid["StopAndTerminateOnlyThisClusterInstances"]]
	if term.Condition["StringEquals"]["ec2:ResourceTag/kubernetes.io/cluster/demo"] != "owned" {
		t.Errorf("terminate is not limited to the cluster's instances: %+v", term.Condition)
	}
	run := pol.Statement[bySid["LaunchOnlyResourcesTaggedForThisCluster"]]
	if run.Condition["StringEquals"]["aws:RequestTag/kubernetes.io/cluster/demo"] != "owned" {
		t.Errorf("launch is not limited to cluster-tagged instances: %+v", run.Condition)
	}
	pass := pol.Statement[bySid["PassOnlyTheClusterRoles"]]
	if !reflect.DeepEqual(pass.Resource, []any{"arn:aws:iam::123456789012:role/seed-demo-worker", "arn:aws:iam::123456789012:role/seed-demo-control-plane"}) {
		t.Errorf("PassRole resource = %v, want the cluster's two roles", pass.Resource)
	}
	move := pol.Statement[bySid["MoveTheEndpointAddressOnlyOntoThisClusterInterfaces"]]
	if move.Action != "ec2:AssignPrivateIpAddresses" || move.Resource != "arn:aws:ec2:eu-west-1:123456789012:network-interface/*" ||
		move.Condition["StringEquals"]["ec2:ResourceTag/kubernetes.io/cluster/demo"] != "owned" {
		t.Errorf("moving the endpoint is not limited to the cluster's interfaces: %+v", move)
	}
	if strings.Contains(doc, "${") {
		t.Errorf("placeholder left: %s", doc)
	}
	if len(doc) > 10240 {
		t.Errorf("policy is %d characters, over IAM's 10,240 for inline policies", len(doc))
	}

	// S3: list the staged images and read them, in the cluster's bucket,
	// and nothing else: not the control-plane bootstraps. In the backup
	// bucket, list, read, write and delete under velero/ and etcd/, and
	// nothing else: not the bucket itself, nor any other prefix.
	bucket := bucketName("123456789012", "eu-west-1", "demo")
	backups := backupBucketName("123456789012", "eu-west-1", "demo")
	type grant struct {
		resource  any
		condition string
	}
	s3 := map[string]grant{}
	for _, st := range pol.Statement {
		actions, _ := st.Action.([]any)
		if a, ok := st.Action.(string); ok {
			actions = []any{a}
		}
		for _, a := range actions {
			if strings.HasPrefix(a.(string), "s3:") {
				c, _ := json.Marshal(st.Condition)
				s3[st.Sid+" "+a.(string)] = grant{st.Resource, string(c)}
			}
		}
		if r, _ := json.Marshal(st.Resource); strings.Contains(string(r), ":s3:") && !strings.HasSuffix(st.Sid, "StagedImages") && !strings.HasSuffix(st.Sid, "BackupPrefixes") {
			t.Errorf("statement %s names an S3 resource", st.Sid)
		}
	}
	backupObjects := grant{[]any{"arn:aws:s3:::" + backups + "/velero/*", "arn:aws:s3:::" + backups + "/etcd/*"}, "null"}
	want := map[string]grant{
		"ListOnlyStagedImages s3:ListBucket":   {"arn:aws:s3:::" + bucket, `{"StringEquals":{"s3:prefix":["` + allImagesPrefix + `","` + controlPlaneImagesPrefix + `"]}}`},
		"ReadOnlyStagedImages s3:GetObject":    {[]any{"arn:aws:s3:::" + bucket + "/" + allImagesPrefix + "*", "arn:aws:s3:::" + bucket + "/" + controlPlaneImagesPrefix + "*"}, "null"},
		"ListOnlyBackupPrefixes s3:ListBucket": {"arn:aws:s3:::" + backups, `{"StringLike":{"s3:prefix":["velero/*","etcd/*"]}}`},
		// Velero writes backups in parts and aborts the parts of one that
		// failed; it deletes expired backups.
		"ReadWriteDeleteOnlyBackupPrefixes s3:AbortMultipartUpload":     backupObjects,
		"ReadWriteDeleteOnlyBackupPrefixes s3:DeleteObject":             backupObjects,
		"ReadWriteDeleteOnlyBackupPrefixes s3:GetObject":                backupObjects,
		"ReadWriteDeleteOnlyBackupPrefixes s3:ListMultipartUploadParts": backupObjects,
		"ReadWriteDeleteOnlyBackupPrefixes s3:PutObject":                backupObjects,
	}
	if !reflect.DeepEqual(s3, want) {
		t.Errorf("S3 grants = %v, want %v", s3, want)
	}
	if backupPrefixVelero != "velero/" || backupPrefixEtcd != "etcd/" {
		t.Errorf("the policy's prefixes are not the provider's: %q, %q", backupPrefixVelero, backupPrefixEtcd)
	}

	if _, err := agentPolicy("aws", "eu-west-1", "123", "demo\"", "vpc-1"); err == nil {
		t.Error("a value that would break the JSON was accepted")
	}
}

// The seed's own policy must allow every EC2 call the provider can make.
func TestSeedPolicyCoversEveryCall(t *testing.T) {
	var pol struct {
		Statement []struct {
			Action any
		}
	}
	if err := json.Unmarshal([]byte(awsmanifests.SeedPolicy), &pol); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, s := range pol.Statement {
		switch a := s.Action.(type) {
		case string:
			allowed[a] = true
		case []any:
			for _, v := range a {
				allowed[v.(string)] = true
			}
		}
	}
	check := func(prefix string, iface reflect.Type) {
		for i := 0; i < iface.NumMethod(); i++ {
			action := prefix + iface.Method(i).Name
			if action == "s3:ListObjectsV2" {
				action = "s3:ListBucket"
			}
			if action == "s3:DeleteObjects" {
				action = "s3:DeleteObject"
			}
			// S3's IAM actions for these two are named differently.
			if action == "s3:PutPublicAccessBlock" {
				action = "s3:PutBucketPublicAccessBlock"
			}
			if action == "s3:PutBucketEncryption" {
				action = "s3:PutEncryptionConfiguration"
			}
			if !allowed[action] {
				t.Errorf("seed-policy.json does not allow %s", action)
			}
		}
	}
	check("ec2:", reflect.TypeOf((*EC2API)(nil)).Elem())
	check("iam:", reflect.TypeOf((*IAMAPI)(nil)).Elem())
	check("s3:", reflect.TypeOf((*S3API)(nil)).Elem())
	var names []string
	for a := range allowed {
		names = append(names, a)
	}
	sort.Strings(names)
	t.Logf("seed policy allows %d actions", len(names))
}

func TestResourceNamesFitIAMLimits(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, n := range []string{controlPlaneRoleName(long), workerRoleName(long), controlPlaneRoleName("demo")} {
		if len(n) > 64 {
			t.Errorf("%q is %d characters", n, len(n))
		}
	}
	if controlPlaneRoleName(long) == controlPlaneRoleName(long[:62]+"b") {
		t.Error("two long names collide")
	}
	if b := bucketName("123456789012", "eu-west-1", long); len(b) > 63 || strings.ToLower(b) != b {
		t.Errorf("bucket name %q", b)
	}
}

func TestEnsureInfrastructureWaitsOutEventualConsistency(t *testing.T) {
	e := newEnv(t)
	e.ec2.NetworkVisibilityDelay = 3 * time.Second
	infra := e.ensure(t)
	if infra.ExternalEndpoint == "" {
		t.Fatal("no endpoint")
	}
	if got := e.ec2.Resources(); got["subnet"] != 3 || got["elastic-ip"] != 1 || got["security-group"] != 2 {
		t.Errorf("resources = %v", got)
	}
	// Not Slept: making the VPC and the Elastic IP sleeps anyway (settleDelay).
	if !strings.Contains(e.logs.String(), "Waiting for EC2 to know a resource it just created") {
		t.Error("never waited: the fake did not answer NotFound")
	}
}
