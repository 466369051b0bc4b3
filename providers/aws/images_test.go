package aws

import (
	"context"
	"encoding/base64"
	"math/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws/fake"
)

// stage uploads a small tarball named name, as `seed up` does.
func stage(t testing.TB, p *provider, name string, workers bool) {
	t.Helper()
	data := "tarball of " + name
	if err := p.StageImage(context.Background(), providers.StagedImage{
		Name: name, Workers: workers, Data: strings.NewReader(data), Size: int64(len(data)),
	}); err != nil {
		t.Fatalf("StageImage(%s): %v", name, err)
	}
}

var importRE = regexp.MustCompile(`(?m)^ctr -n k8s\.io images import "\$SEED_DIR/staged-images/([a-z0-9-]+)\.tar"$`)

// imports returns the images a user data script imports, and the bucket
// keys it downloads them from.
func imports(script string) (names, keys []string) {
	for _, m := range importRE.FindAllStringSubmatch(script, -1) {
		names = append(names, m[1])
	}
	for _, m := range regexp.MustCompile(`(?m)^curl -fsS --retry 10 -o "\$SEED_DIR/staged-images/[a-z0-9-]+\.tar" 'https://[^/]+/(images/[^?]+)\?`).FindAllStringSubmatch(script, -1) {
		keys = append(keys, m[1])
	}
	return names, keys
}

// The seed stages the agent image for control planes and the network image
// for every machine, and launches the control plane; the agent, a process
// that staged nothing, launches workers. Each machine imports what its role
// needs, before its bootstrap runs.
func TestStagedImagesReachTheirRoles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	stage(t, e.p, "agent", false)
	stage(t, e.p, "network", true)
	bucket := bucketName(fake.DefaultAccountID, testRegion, "demo")
	for key, want := range map[string]string{"images/control-plane/agent.tar": "tarball of agent", "images/all/network.tar": "tarball of network"} {
		if got, ok := e.s3.Object(bucket, key); !ok || string(got) != want {
			t.Errorf("object %s = %q, %v", key, got, ok)
		}
	}
	if _, err := e.p.CreateMachine(ctx, controlPlane("demo-control-plane")); err != nil {
		t.Fatal(err)
	}
	if n := e.s3.Calls("ListObjectsV2"); n != 0 {
		t.Errorf("the seed listed the bucket %d times; it knows what it staged", n)
	}
	agent := e.restart(t)
	if _, err := agent.CreateMachine(ctx, worker("demo-workers-abcde")); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		machine   string
		wantNames []string
		wantKeys  []string
	}{
		{"demo-control-plane", []string{"agent", "network"}, []string{"images/control-plane/agent.tar", "images/all/network.tar"}},
		{"demo-workers-abcde", []string{"network"}, []string{"images/all/network.tar"}},
	} {
		t.Run(c.machine, func(t *testing.T) {
			script := decodeUserData(t, e.ec2.UserData(aws.ToString(instanceByName(t, e.ec2, c.machine).InstanceId)))
			names, keys := imports(script)
			if strings.Join(names, ",") != strings.Join(c.wantNames, ",") || strings.Join(keys, ",") != strings.Join(c.wantKeys, ",") {
				t.Errorf("imports %v from %v, want %v from %v", names, keys, c.wantNames, c.wantKeys)
			}
			// Downloads come before the packages (URLs may expire), imports
			// once containerd runs, and both before the bootstrap.
			curl := strings.Index(script, "staged-images/network.tar\" 'https://")
			apt := strings.Index(script, "apt_get update")
			containerd := strings.Index(script, "systemctl restart containerd")
			imp := strings.Index(script, "ctr -n k8s.io images import")
			boot := strings.Index(script, `/bin/bash "$SEED_DIR/bootstrap/script"`)
			if curl < 0 || curl >= apt || apt >= containerd || containerd >= imp || imp >= boot {
				t.Errorf("order: curl %d, apt %d, containerd %d, import %d, bootstrap %d", curl, apt, containerd, imp, boot)
			}
			if !strings.Contains(script, "X-Amz-Expires=3600") {
				t.Error("image URLs do not expire after presignTTL")
			}
		})
	}
	if strings.Contains(e.logs.String(), "X-Amz-Signature") {
		t.Error("a presigned URL is in the logs")
	}
	if strings.Contains(e.logs.String(), "NotReady") {
		t.Errorf("warned about a missing network image that was staged:\n%s", e.logs)
	}
}

// An agent lists images/all/ once per imageListTTL, whatever it launches,
// and presigns every image for every launch.
func TestStagedImageListingIsCached(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ensure(t)
	stage(t, e.p, "agent", false)
	stage(t, e.p, "network", true)
	agent := e.restart(t)
	lists := func() int { return e.s3.Calls("ListObjectsV2") }
	presigns := e.s3.Calls("PresignGetObject")

	steps := []struct {
		advance   time.Duration
		n         int
		wantLists int
	}{
		{0, 1, 1},
		{time.Minute, 5, 1},
		{2 * time.Minute, 1, 1},
		{imageListTTL, 2, 2},
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		before := e.ec2.TotalCalls()
		ms, err := agent.CreateMachines(ctx, workers("w"+string(rune('a'+i)), s.n))
		if err != nil || len(ms) != s.n {
			t.Fatalf("step %d: CreateMachines = %d, %v", i, len(ms), err)
		}
		if got := lists(); got != s.wantLists {
			t.Errorf("step %d: %d listings, want %d", i, got, s.wantLists)
		}
		if i > 0 {
			// No EC2 call is spent on images: the scale-up budget holds.
			if got, want := e.ec2.TotalCalls()-before, min(s.n, 3); got != want {
				t.Errorf("step %d: %d EC2 calls, want %d", i, got, want)
			}
		}
	}
	if got := e.s3.Calls("PresignGetObject") - presigns; got != len(steps) {
		t.Errorf("%d presigns for %d launches of one image", got, len(steps))
	}
}

// Without a bucket, or with nothing staged for workers, workers still launch,
// and the log says why their Nodes will stay NotReady.
func TestWorkersLaunchWithoutStagedImages(t *testing.T) {
	for _, c := range []struct {
		name    string
		prepare func(t *testing.T, e *env)
		why     string
	}{
		{"empty bucket", func(t *testing.T, e *env) { stage(t, e.p, "agent", false) }, "holds no image under images/all/"},
		{"no bucket", func(t *testing.T, e *env) {
			if _, err := e.s3.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(bucketName(fake.DefaultAccountID, testRegion, "demo"))}); err != nil {
				t.Fatal(err)
			}
		}, "bucket does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.ensure(t)
			c.prepare(t, e)
			agent := e.restart(t)
			ms, err := agent.CreateMachines(context.Background(), workers("w", 2))
			if err != nil || len(ms) != 2 {
				t.Fatalf("CreateMachines = %d, %v", len(ms), err)
			}
			script := decodeUserData(t, e.ec2.UserData(aws.ToString(instanceByName(t, e.ec2, "w-aa").InstanceId)))
			if names, _ := imports(script); len(names) != 0 || strings.Contains(script, "staged-images") {
				t.Errorf("worker imports %v", names)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, c.why) || !strings.Contains(logs, "their Nodes will stay NotReady") {
				t.Errorf("no warning that says %q and NotReady:\n%s", c.why, logs)
			}
		})
	}
}

// Presigned URLs made with temporary credentials are about 1.5 KB and do not
// compress. A batch of workers with their own join configurations and two
// staged images still launches in one RunInstances per subnet, under 16 KiB.
func TestBatchUserDataWithTwoImagesFits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	infra := e.ensure(t)
	token := make([]byte, 900)
	rand.New(rand.NewSource(1)).Read(token)
	e.s3.SessionToken = base64.StdEncoding.EncodeToString(token)
	stage(t, e.p, "network", true)
	stage(t, e.p, "csi", true)
	agent := e.restart(t)

	c := bootstrap.Cluster{Name: "demo", KubernetesVersion: "v1.34.2", ControlPlaneEndpoint: infra.ControlPlaneEndpoint, CertSANs: infra.CertSANs}
	var specs []providers.MachineSpec
	for _, s := range workers("demo-workers", 30) {
		b, err := bootstrap.Join(c, bootstrap.Machine{Name: s.Name, KubernetesVersion: "v1.34.2"}, "abcdef.0123456789abcdef", []string{"sha256:" + strings.Repeat("a", 64)})
		if err != nil {
			t.Fatal(err)
		}
		s.Bootstrap = b
		specs = append(specs, s)
	}
	e.ec2.ResetCalls()
	ms, err := agent.CreateMachines(ctx, specs)
	if err != nil || len(ms) != len(specs) {
		t.Fatalf("CreateMachines = %d, %v", len(ms), err)
	}
	if n := e.ec2.Calls("RunInstances"); n != 3 {
		t.Errorf("%d RunInstances for 30 workers, want 3: the batches were split to fit", n)
	}
	biggest := 0
	for _, s := range specs {
		ud := e.ec2.UserData(aws.ToString(instanceByName(t, e.ec2, s.Name).InstanceId))
		raw, _ := base64.StdEncoding.DecodeString(ud)
		biggest = max(biggest, len(raw))
		script := decodeUserData(t, ud)
		if names, _ := imports(script); strings.Join(names, ",") != "csi,network" {
			t.Errorf("%s imports %v", s.Name, names)
		}
		if !strings.Contains(script, "X-Amz-Security-Token=") {
			t.Fatal("the fake did not make URLs as long as real ones")
		}
	}
	if biggest > maxUserData {
		t.Errorf("user data of %d bytes gzipped", biggest)
	}
	t.Logf("largest user data: %d bytes gzipped of %d", biggest, maxUserData)

	// fit splits a batch whose image URLs would take it over the limit.
	many := make([]stagedURL, 20)
	for i := range many {
		rand.New(rand.NewSource(int64(i))).Read(token)
		many[i] = stagedURL{name: "img" + string(rune('a'+i)), url: "https://b.s3.amazonaws.com/images/all/x.tar?X-Amz-Security-Token=" + base64.URLEncoding.EncodeToString(token)}
	}
	parts := agent.fit(specs, many)
	if len(parts) < 2 {
		t.Errorf("fit kept %d specs with 20 image URLs in one launch", len(specs))
	}
	for _, part := range parts {
		if ud, err := renderUserData(userDataFor(part, many)); err != nil || (len(part) > 1 && len(ud) > maxUserData) {
			t.Errorf("part of %d: %d bytes, %v", len(part), len(ud), err)
		}
	}
}

func TestStageImageRejectsBadNames(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"", "Agent", "a/b", "../x", "x.tar", "-x"} {
		err := e.p.StageImage(context.Background(), providers.StagedImage{Name: name, Data: strings.NewReader("x"), Size: 1})
		if !providers.IsInvalid(err) {
			t.Errorf("StageImage(%q) = %v, want an Invalid error", name, err)
		}
	}
	if n := e.s3.Calls("PutObject") + e.s3.Calls("CreateBucket"); n != 0 {
		t.Errorf("%d S3 calls for invalid names", n)
	}
}
