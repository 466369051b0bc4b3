package scaleenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkAgentScale measures bin/agent at each size in
// SEED_BENCH_SCALE_SIZES (default "10,1000"): a scale-up from no workers
// to N simulated machines, then a minute at rest. It reports the agent's
// RSS at rest and at peak (the kernel's VmHWM), reconcile pass p50/p99
// during the scale-up and at rest, API requests per idle pass and for the
// scale-up, and the largest status and ledger objects. One run per size:
// use -benchtime=1x.
func BenchmarkAgentScale(b *testing.B) {
	for _, n := range benchSizes(b, "SEED_BENCH_SCALE_SIZES", 0) {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) { benchmarkScale(b, n) })
	}
}

// benchSizes reads the machine counts a benchmark runs at from the
// comma-separated env (default "10,1000"), each at most most (0: no bound).
func benchSizes(b *testing.B, env string, most int) []int {
	sizes := os.Getenv(env)
	if sizes == "" {
		sizes = "10,1000"
	}
	var out []int
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("%s: %q is not a machine count", env, s)
		}
		if most > 0 && n > most {
			b.Fatalf("%s: %d machines; this benchmark runs at most %d", env, n, most)
		}
		out = append(out, n)
	}
	return out
}

// idleFor is how long the agent is watched at rest; with a 5s resync that
// is a dozen idle passes.
const idleFor = 60 * time.Second

func benchmarkScale(b *testing.B, n int) {
	ctx := b.Context()
	// A pool holds at most 1,000 machines (spec validation): N is split
	// over pools of 1,000, the last taking the rest.
	var pools []Pool
	for i := 0; i*1000 < n; i++ {
		pools = append(pools, Pool{Name: fmt.Sprintf("workers-%d", i), MachineType: "sim-2x8"})
	}
	opts := Options{Spec: Spec("scale", "1s", pools)}
	if n > 2000 {
		// Fewer lease writes, as the research notes advise at 5,000.
		opts.NodeLeaseDuration = 120 * time.Second
	}
	env := Start(ctx, b, opts)
	agent, err := env.StartAgent("agent-1", "--resync=5s", "--profiling")
	if err != nil {
		b.Fatal(err)
	}
	if err := agent.WaitMetrics(ctx, time.Minute); err != nil {
		b.Fatal(err)
	}
	waitBench(b, env, agent, pools)

	// Largest status and ledger seen, sampled every second throughout.
	var mu sync.Mutex
	maxStatus, maxLedger := 0, 0
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Go(func() {
		for {
			st, led, _ := env.ObjectSizes(sampleCtx)
			mu.Lock()
			maxStatus, maxLedger = max(maxStatus, st), max(maxLedger, led)
			mu.Unlock()
			select {
			case <-sampleCtx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	})

	b.ResetTimer()
	before := scrape(b, agent)
	for i := range pools {
		pools[i].Replicas = min(1000, n-i*1000)
	}
	start := time.Now()
	if err := env.SetSpec(ctx, Spec("scale", "1s", pools)); err != nil {
		b.Fatal(err)
	}
	waitBench(b, env, agent, pools)
	scaleUp := time.Since(start)
	afterUp := scrape(b, agent)

	time.Sleep(idleFor / 6) // let the last writes of the scale-up settle
	idleStart := scrape(b, agent)
	cpu := filepath.Join(os.TempDir(), fmt.Sprintf("seed-agent-cpu-idle-scale-%d.pprof", n))
	if err := agent.CPUProfile(ctx, idleFor, cpu); err != nil {
		b.Fatal(err)
	}
	idleEnd := scrape(b, agent)
	b.Logf("nodes=%d: the agent's CPU profile of the idle minute: go tool pprof -top %s", n, cpu)
	rss, peak, err := agent.Memory()
	if err != nil {
		b.Fatal(err)
	}
	stopSampling()
	sampling.Wait()
	b.StopTimer()

	up := RequestsBetween(before, afterUp)
	idle := RequestsBetween(idleStart, idleEnd)
	idlePasses := Passes(idleStart, idleEnd)
	const mib = 1 << 20
	b.ReportMetric(float64(rss)/mib, "MiB-rss-rest")
	b.ReportMetric(float64(peak)/mib, "MiB-rss-peak")
	b.ReportMetric(PassQuantile(idleStart, idleEnd, 0.5)*1000, "ms-idle-pass-p50")
	b.ReportMetric(PassQuantile(idleStart, idleEnd, 0.99)*1000, "ms-idle-pass-p99")
	over := overTarget(b, n, idleStart, idleEnd)
	b.ReportMetric(PassQuantile(before, afterUp, 0.5)*1000, "ms-scaleup-pass-p50")
	b.ReportMetric(PassQuantile(before, afterUp, 0.99)*1000, "ms-scaleup-pass-p99")
	b.ReportMetric(idle.Total/max(idlePasses, 1), "req/idle-pass")
	b.ReportMetric(up.Total, "req/scale-up")
	b.ReportMetric(up.Total/float64(n), "req/machine")
	b.ReportMetric(scaleUp.Seconds(), "s-scale-up")
	b.ReportMetric(float64(maxStatus)/1024, "KiB-status-max")
	b.ReportMetric(float64(maxLedger)/1024, "KiB-ledger-max")
	b.Logf("nodes=%d: scale-up 0→%d in %s, %.0f passes; requests %.0f (%s)", n, n, scaleUp.Round(time.Second),
		Passes(before, afterUp), up.Total, up)
	b.Logf("nodes=%d: at rest %.0f passes in %s (%s), requests %.0f (%s), lease renewals %.0f; asked for by: %s", n, idlePasses, idleFor, over,
		idle.Total, idle, idle.Leases, Wakes(idleStart, idleEnd))
}

// overTarget reports, and says, how many idle passes took longer than the
// pass target for n nodes (200 ms up to 1,000 nodes, 1 s above): a count
// from the histogram's bucket at the target, exact where its p99 is
// interpolated.
func overTarget(b *testing.B, n int, before, after Samples) string {
	target := 0.2
	if n > 1000 {
		target = 1
	}
	over := PassesOver(before, after, target)
	b.ReportMetric(over, "idle-passes-over-target")
	return fmt.Sprintf("%.0f of %.0f longer than %s", over, Passes(before, after), time.Duration(target*float64(time.Second)))
}

func scrape(b *testing.B, a *Agent) Samples {
	b.Helper()
	s, err := a.Metrics(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// waitBench waits for convergence; at 5,000 machines a full Observe costs
// the API server, so it polls slowly.
func waitBench(b *testing.B, env *Env, agent *Agent, pools []Pool) {
	b.Helper()
	deadline := time.Now().Add(45 * time.Minute)
	for {
		o, err := env.Observe(b.Context(), pools)
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			why = o.Converged(pools)
		}
		if why == "" {
			return
		}
		if err := agent.Check(); err != nil {
			b.Fatalf("the agent exited: %v", err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("not converged: %s\n%s", why, agent.LogTail(30))
		}
		// A full Observe reads every Node: at thousands, poll less often.
		time.Sleep(max(3*time.Second, time.Duration(len(pools))*2*time.Second))
	}
}
