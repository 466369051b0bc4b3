package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedhq/seed/agent/joiner"
	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/cluster"
	"github.com/seedhq/seed/providers"
)

// BenchmarkSelfManagement brings one cluster up and measures, b.N times
// each: ConfigMap edit → first worker container created; 0→3 workers all
// Ready through the agent; three raw parallel joins of the same image
// (the same provider and join rendering, no agent) for comparison; a
// removed worker replaced and Ready. Then the agent's RSS at rest.
func BenchmarkSelfManagement(b *testing.B) {
	requireBench(b)
	name := "bench-self"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	spec := func(n int) string { return framework.SpecYAML(name, "", framework.Pools(framework.Pool("workers", n))) }
	paused := framework.SpecYAML(name, "", "  paused: true\n"+framework.Pools(framework.Pool("workers", 0)))
	c := framework.Up(b, name, spec(0))

	var firstCreate, allReady, raw, replace []time.Duration
	for range b.N {
		start := time.Now()
		c.EditSpec(ctx, b, spec(3))
		// Only the API is polled while the machines come up, as in
		// rawJoins: polling `docker ps` there would compete with the
		// creations it times (a CLI process every 100 ms, and the engine's
		// locks).
		wait(b, 5*time.Minute, func() bool { _, r, _ := c.PoolNodes(ctx, "workers"); return r == 3 })
		allReady = append(allReady, time.Since(start))
		// When the engine finished creating the first one, from its event
		// log.
		firstCreate = append(firstCreate, firstCreateEvent(b, name, start).Sub(start))
		b.Logf("edit → first container created %s, all 3 Ready %s", firstCreate[len(firstCreate)-1].Round(time.Millisecond), allReady[len(allReady)-1].Round(time.Millisecond))

		victim := framework.PoolContainers(b, name, "workers")[0]
		start = time.Now()
		framework.Docker(b, "rm", "-f", victim)
		wait(b, 5*time.Minute, func() bool {
			got := framework.PoolContainers(b, name, "workers")
			names, r, _ := c.PoolNodes(ctx, "workers")
			return len(got) == 3 && !slices.Contains(got, victim) && !slices.Contains(names, victim) && r == 3 && len(names) == 3
		})
		replace = append(replace, time.Since(start))

		c.EditSpec(ctx, b, spec(0))
		wait(b, 5*time.Minute, func() bool { n, _, _ := c.PoolNodes(ctx, "workers"); return len(n) == 0 })

		// The baseline: the agent paused (it would rightly remove machines
		// of a pool the spec does not have), the same joins made directly.
		c.EditSpec(ctx, b, paused)
		wait(b, time.Minute, func() bool {
			st, err := c.Status(ctx)
			cond := (*v1alpha1.Condition)(nil)
			if err == nil {
				cond = st.Condition(v1alpha1.ConditionPaused)
			}
			return cond != nil && cond.Status == "True"
		})
		raw = append(raw, rawJoins(ctx, b, c, name, 3))
		c.EditSpec(ctx, b, spec(0))
		// The next edit should find the agent and the engine at rest, as
		// the goal has it, not still removing this round's machines.
		// The control plane and the load balancer.
		wait(b, 2*time.Minute, func() bool { all, _, _ := framework.Owned(b, name); return len(all) == 2 })
		time.Sleep(5 * time.Second)
	}
	report3 := func(unit string, d []time.Duration) {
		slices.Sort(d)
		b.ReportMetric(d[len(d)/2].Seconds(), unit+"-p50-s")
		b.ReportMetric(d[min(len(d)-1, len(d)*95/100)].Seconds(), unit+"-p95-s")
	}
	report3("edit-to-create", firstCreate)
	report3("0to3-ready", allReady)
	report3("raw-3-joins", raw)
	report3("replace-removed", replace)
	time.Sleep(30 * time.Second) // at rest
	b.ReportMetric(agentRSSMiB(b, name), "agent-rss-MiB")
}

// rawJoins creates n workers directly (same provider, same join rendering
// as the agent, no agent involved), waits until all are Ready Nodes, then
// removes them.
func rawJoins(ctx context.Context, b *testing.B, c *framework.Cluster, name string, n int) time.Duration {
	spec, _, p, err := cluster.Open(ctx, c.SpecFile, "", "")
	if err != nil {
		b.Fatal(err)
	}
	j := joiner.Joiner{Client: c.Client, Capabilities: p.Capabilities}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms := providers.MachineSpec{Name: fmt.Sprintf("%s-raw-%d", name, i), Pool: "raw", Role: providers.RoleWorker,
				KubernetesVersion: v1alpha1.DefaultKubernetesVersion}
			boot, err := j.Bootstrap(ctx, spec, ms)
			if err == nil {
				ms.Bootstrap = boot
				_, err = p.CreateMachine(ctx, ms)
			}
			if err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	wait(b, 5*time.Minute, func() bool { _, r, _ := c.PoolNodes(ctx, "raw"); return r == n })
	took := time.Since(start)
	for i := range n {
		_ = p.DeleteMachine(ctx, fmt.Sprintf("%s-raw-%d", name, i))
		_ = c.Client.CoreV1().Nodes().Delete(ctx, fmt.Sprintf("%s-raw-%d", name, i), deleteNow)
	}
	return took
}

func agentRSSMiB(b *testing.B, name string) float64 {
	cp := cluster.ControlPlaneMachineName(name)
	out, err := exec.Command("docker", "exec", cp, "sh", "-c",
		`for p in /proc/[0-9]*; do if [ "$(cat $p/comm 2>/dev/null)" = agent ]; then grep VmRSS $p/status; fi; done`).CombinedOutput()
	if err != nil {
		b.Fatalf("reading the agent's RSS: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		b.Fatalf("no agent process found on %s: %q", cp, out)
	}
	kb, err := strconv.Atoi(f[1])
	if err != nil {
		b.Fatal(err)
	}
	return float64(kb) / 1024
}
