package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

var deleteNow = metav1.DeleteOptions{}

func upForBench(ctx context.Context, b *testing.B, name, dir, spec string) *framework.Cluster {
	c := &framework.Cluster{Name: name, Kubeconfig: filepath.Join(dir, "kubeconfig"), SpecFile: filepath.Join(dir, "cluster.yaml")}
	if err := os.WriteFile(c.SpecFile, []byte(spec), 0o600); err != nil {
		b.Fatal(err)
	}
	r := framework.Seed(ctx, "up", "-f", c.SpecFile, "--kubeconfig", c.Kubeconfig, "--agent-image", os.Getenv("SEED_AGENT_IMAGE"))
	if r.Err != nil {
		b.Fatalf("seed up: %v\n%s", r.Err, r.Stderr)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	c.Config, c.Client = cfg, kubernetes.NewForConfigOrDie(cfg)
	return c
}

func editSpec(ctx context.Context, b *testing.B, c *framework.Cluster, spec string) {
	cms := c.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace)
	cm, err := cms.Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	cm.Data[v1alpha1.SpecKey] = spec
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		b.Fatal(err)
	}
}

func containers(b *testing.B, cluster, pool string) []string {
	out, err := exec.Command("docker", "ps", "-a", "--format", "{{.Names}}",
		"--filter", "label="+providers.LabelCluster+"="+cluster, "--filter", "label="+providers.LabelPool+"="+pool).Output()
	if err != nil {
		b.Fatal(err)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		return strings.Split(s, "\n")
	}
	return nil
}

func mustRun(b *testing.B, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// wait polls cond every 100ms (benchmarks want finer resolution than tests).
func wait(b *testing.B, timeout time.Duration, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("timed out after %s", timeout)
}
