package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/pkg/cluster"
	"github.com/seedhq/seed/providers"
)

// BenchmarkHandOff measures `seed up` from nothing to the agent's hand-off,
// with cached images, and reports p50 over b.N runs (use -benchtime=5x).
func BenchmarkHandOff(b *testing.B) {
	requireBench(b)
	var runs []time.Duration
	for i := range b.N {
		name := fmt.Sprintf("bench-up-%d", i)
		dir := b.TempDir()
		spec := filepath.Join(dir, "cluster.yaml")
		if err := os.WriteFile(spec, []byte(framework.SpecYAML(name, "", "")), 0o600); err != nil {
			b.Fatal(err)
		}
		kc := filepath.Join(dir, "kubeconfig")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		r := framework.Seed(ctx, "up", "-f", spec, "--kubeconfig", kc, "--agent-image", os.Getenv("SEED_AGENT_IMAGE"))
		down := framework.Seed(ctx, "down", "-f", spec, "--kubeconfig", kc)
		cancel()
		if r.Err != nil {
			b.Fatalf("seed up: %v\n%s", r.Err, r.Stderr)
		}
		if down.Err != nil {
			b.Fatalf("seed down: %v", down.Err)
		}
		runs = append(runs, r.Duration)
	}
	report(b, runs)
}

// BenchmarkRawKubeadmInit measures the same node image doing a bare kubeadm
// init (and the pod network), with no agent: create the machine, wait for
// its bootstrap to finish.
func BenchmarkRawKubeadmInit(b *testing.B) {
	requireBench(b)
	var runs []time.Duration
	for i := range b.N {
		name := fmt.Sprintf("bench-raw-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		// The default spec of `seed up`: a Docker cluster, through the
		// registry, with the load balancer the agent image serves.
		_, _, p, err := cluster.Open(ctx, "", name, framework.AgentImage(b))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		infra, err := p.EnsureInfrastructure(ctx)
		if err != nil {
			b.Fatal(err)
		}
		cp := cluster.ControlPlaneMachineName(name)
		boot, err := bootstrap.ControlPlane(bootstrap.Cluster{Name: name, KubernetesVersion: v1alpha1.DefaultKubernetesVersion,
			ControlPlaneEndpoint: infra.ControlPlaneEndpoint, CertSANs: infra.CertSANs},
			bootstrap.Machine{Name: cp, KubernetesVersion: v1alpha1.DefaultKubernetesVersion})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.CreateMachine(ctx, providers.MachineSpec{Name: cp, Pool: v1alpha1.ControlPlanePool, Role: providers.RoleControlPlane,
			KubernetesVersion: v1alpha1.DefaultKubernetesVersion, Bootstrap: boot}); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := p.ReadFile(ctx, cp, bootstrap.MarkerPath); err == nil {
				break
			}
			if ctx.Err() != nil {
				b.Fatalf("kubeadm init did not finish: %v", ctx.Err())
			}
			time.Sleep(200 * time.Millisecond)
		}
		runs = append(runs, time.Since(start))
		if err := p.DestroyInfrastructure(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	report(b, runs)
}

func report(b *testing.B, runs []time.Duration) {
	slices.Sort(runs)
	b.ReportMetric(runs[len(runs)/2].Seconds(), "p50-s")
	b.ReportMetric(runs[0].Seconds(), "min-s")
	b.ReportMetric(runs[len(runs)-1].Seconds(), "max-s")
}
