package framework

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/pkg/cluster"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/seed/app"
)

// Require skips the test unless the e2e prerequisites were prepared by
// hack/test.sh e2e (SEED_E2E=1); under CI=true it fails instead, so an e2e
// run never passes by skipping.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("SEED_E2E") == "1" {
		return
	}
	msg := "end-to-end tests need Docker and the images: run `hack/test.sh e2e` (or `make test`)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// AgentImage is the agent image hack/test.sh built.
func AgentImage(t testing.TB) string {
	t.Helper()
	img := os.Getenv("SEED_AGENT_IMAGE")
	if img == "" {
		t.Fatal("SEED_AGENT_IMAGE is not set: run `hack/test.sh e2e`")
	}
	return img
}

// Cluster is a cluster brought up by Seed for a test.
type Cluster struct {
	Name       string
	Kubeconfig string
	SpecFile   string
	Config     *rest.Config
	Client     kubernetes.Interface
}

// Result is what one seed command printed.
type Result struct {
	Stdout, Stderr string
	Err            error
	Duration       time.Duration
}

// Seed runs one seed command in-process, exactly as the binary would.
func Seed(ctx context.Context, args ...string) Result {
	var out, errOut bytes.Buffer
	start := time.Now()
	err := app.Run(ctx, args, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return Result{Stdout: out.String(), Stderr: errOut.String(), Err: err, Duration: time.Since(start)}
}

// NewName returns a cluster name unique to this test run.
func NewName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000)
}

// SpecYAML renders a Docker cluster spec with the given pools section
// (already indented under spec:, may be empty). When SEED_NODE_IMAGE names
// an image other than the default, seed-node:<version>, the spec asks for
// it, so a run can test a node image without retagging the one that other
// runs on the same engine use.
func SpecYAML(name, version, extra string) string {
	if version == "" {
		version = v1alpha1.DefaultKubernetesVersion
	}
	docker := "docker: {}"
	if img := os.Getenv("SEED_NODE_IMAGE"); img != "" && img != "seed-node:"+version {
		docker = fmt.Sprintf("docker: {nodeImage: %q}", img)
	}
	return fmt.Sprintf(`apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata:
  name: %s
spec:
  kubernetesVersion: %s
  provider:
    %s
%s`, name, version, docker, extra)
}

// Up brings a cluster up with `seed up -f` and registers `seed down` for
// when the test ends (unless SEED_E2E_KEEP=1, for debugging).
func Up(t testing.TB, name, spec string) *Cluster {
	t.Helper()
	dir := t.TempDir()
	c := &Cluster{Name: name, Kubeconfig: filepath.Join(dir, "kubeconfig"), SpecFile: filepath.Join(dir, "cluster.yaml")}
	if err := os.WriteFile(c.SpecFile, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("SEED_E2E_KEEP") == "1" {
			t.Logf("keeping cluster %s (SEED_E2E_KEEP=1); kubeconfig %s", name, c.Kubeconfig)
			return
		}
		if t.Failed() {
			DumpDiagnostics(t, c)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if r := Seed(ctx, "down", "-f", c.SpecFile, "--kubeconfig", c.Kubeconfig); r.Err != nil {
			t.Errorf("seed down: %v\n%s", r.Err, r.Stderr)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := c.SeedUp(ctx, t)
	if r.Err != nil {
		t.Fatalf("seed up failed after %s: %v\nstdout:\n%s\nstderr:\n%s", r.Duration, r.Err, r.Stdout, r.Stderr)
	}
	t.Logf("seed up took %s:\n%s", r.Duration.Round(100*time.Millisecond), r.Stderr)
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c.Config = cfg
	c.Client = kubernetes.NewForConfigOrDie(cfg)
	return c
}

// SeedUp runs `seed up` for the cluster (again).
func (c *Cluster) SeedUp(ctx context.Context, t testing.TB) Result {
	return Seed(ctx, "up", "-f", c.SpecFile, "--kubeconfig", c.Kubeconfig, "--agent-image", AgentImage(t))
}

// Status reads the agent's status.
func (c *Cluster) Status(ctx context.Context) (*v1alpha1.ClusterStatus, error) {
	return cluster.GetStatus(ctx, c.Config)
}

// Docker runs the docker CLI and returns its trimmed output.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Owned lists the containers, volumes and networks labelled as the cluster's.
func Owned(t testing.TB, name string) (containers, volumes, networks []string) {
	t.Helper()
	filter := "label=" + providers.LabelCluster + "=" + name
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	return split(Docker(t, "ps", "-aq", "--filter", filter)),
		split(Docker(t, "volume", "ls", "-q", "--filter", filter)),
		split(Docker(t, "network", "ls", "-q", "--filter", filter))
}

// BuildProbeImage builds the e2e probe workload image (FROM scratch, tagged
// by content) and returns its reference.
func BuildProbeImage(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "probe")
	dir := t.TempDir()
	bin := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir, cmd.Env = src, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	ref := "seed-e2e-probe:" + hex.EncodeToString(sum[:])[:12]
	if exec.Command("docker", "image", "inspect", ref).Run() == nil {
		return ref
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("docker", "build", "-q", "-t", ref, dir)
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the probe image: %v\n%s", err, out)
	}
	return ref
}

// LoadImage imports a local image into a machine's containerd, as the
// node image does at build time for its own images.
func LoadImage(t testing.TB, machine, ref string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", fmt.Sprintf("docker save %q | docker exec -i %q ctr -n k8s.io images import --no-unpack=false -", ref, machine))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loading image %s into %s: %v\n%s", ref, machine, err, out)
	}
}

// Eventually polls cond every second until it returns true or timeout
// passes; cond's last message is reported on timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		ok, msg := cond()
		if ok {
			return time.Since(start)
		}
		last = msg
		time.Sleep(time.Second)
	}
	t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
	return 0
}

// NodeReady reports whether the named node is Ready.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodsReady reports whether every pod matching selector in ns is Ready (and
// at least one exists).
func PodsReady(ctx context.Context, client kubernetes.Interface, ns, selector string) (bool, string) {
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return false, err.Error()
	}
	if len(pods.Items) == 0 {
		return false, "no pods match " + selector
	}
	for _, p := range pods.Items {
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false, fmt.Sprintf("pod %s/%s is %s", p.Namespace, p.Name, p.Status.Phase)
		}
	}
	return true, ""
}

// DumpDiagnostics logs what helps explain a failure: nodes, pods, the
// agent's status and log, and each machine's bootstrap log.
func DumpDiagnostics(t testing.TB, c *Cluster) {
	t.Helper()
	run := func(name string, args ...string) {
		out, _ := exec.Command(name, args...).CombinedOutput()
		t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out)
	}
	// Machines only: the load balancer has no shell.
	machines := strings.Fields(Docker(t, "ps", "-aq", "--filter", "label="+providers.LabelCluster+"="+c.Name,
		"--filter", "label="+providers.LabelRole))
	for _, id := range machines {
		run("docker", "exec", id, "sh", "-c", "tail -n 40 /var/log/seed-bootstrap.log; systemctl --failed --no-pager; journalctl -u kubelet --no-pager -n 30")
	}
	// kubectl runs inside a control plane, which has it and the admin
	// kubeconfig; found by role, since a replaced one has another name.
	cp := cluster.ControlPlaneMachineName(c.Name)
	if ids := strings.Fields(Docker(t, "ps", "-q", "--filter", "label="+providers.LabelCluster+"="+c.Name,
		"--filter", "label="+providers.LabelRole+"="+string(providers.RoleControlPlane))); len(ids) > 0 {
		cp = ids[0]
	}
	kubectl := func(args ...string) {
		run("docker", append([]string{"exec", cp, "kubectl", "--kubeconfig=/etc/kubernetes/admin.conf"}, args...)...)
	}
	kubectl("get", "nodes,pods", "-A", "-o", "wide")
	kubectl("-n", "seed-system", "logs", "deploy/seed-agent", "--tail=60")
	kubectl("-n", "seed-system", "get", "configmap", "seed-status", "-o", "jsonpath={.data.status\\.yaml}")
}
