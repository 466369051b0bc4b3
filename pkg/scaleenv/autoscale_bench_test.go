package scaleenv

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/seedhq/seed/providers"
)

// BenchmarkAutoscaleBurst measures the autoscaler's scale-up at each size
// N in SEED_BENCH_BURST_SIZES (default "10,1000"): the only worker pool is
// autoscaled (minReplicas 0, maxReplicas N, sim-2x8) and a Deployment of N
// pods of 1500m cpu, one per machine, is created at once. It reports the
// latency from a pod found unschedulable to the provider call for its
// machine (p50/p99, both the agent's own histogram and as watched from
// here), the time from the Deployment's creation to the last of the N
// creates and to all N pods Running, the machines made beyond N, the
// agent's peak RSS and its API requests during the burst. Then, unless
// SEED_BENCH_REST_PODS_PER_NODE is 0, it adds that many (default 30) small
// pods per node and reports the agent's RSS at rest with them. One run per
// size: use -benchtime=1x.
func BenchmarkAutoscaleBurst(b *testing.B) {
	perNode := 30
	if s := os.Getenv("SEED_BENCH_REST_PODS_PER_NODE"); s != "" {
		var err error
		if perNode, err = strconv.Atoi(s); err != nil || perNode < 0 {
			b.Fatalf("SEED_BENCH_REST_PODS_PER_NODE: %q is not a pod count", s)
		}
	}
	// One pool holds the burst: at most 1,000 machines.
	for _, n := range benchSizes(b, "SEED_BENCH_BURST_SIZES", 1000) {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) { benchmarkBurst(b, n, perNode) })
	}
}

const (
	burstPool = "burst"
	// burstDelay is the simulated machines' registration delay.
	burstDelay = time.Second
	// burstTimeout stops a stuck phase; it is no timing assertion.
	burstTimeout = 20 * time.Minute
)

// burstWatch records, from informers in the benchmark's own process, when
// each pod was first seen unschedulable and Running, and when each machine
// of the pool was created: a simulated machine is its Node, made by the
// provider call, so the Node's arrival here is that call plus a watch's
// delay (milliseconds; its creationTimestamp has whole seconds only).
type burstWatch struct {
	mu      sync.Mutex
	unsched map[string]time.Time // burst pods, by name
	running map[string]int       // pods Running, by app label
	seen    map[string]bool      // pods counted in running
	created map[string]time.Time // machines of the pool, by name
}

func watchBurst(b *testing.B, env *Env) *burstWatch {
	w := &burstWatch{unsched: map[string]time.Time{}, running: map[string]int{}, seen: map[string]bool{}, created: map[string]time.Time{}}
	ctx := b.Context()
	pods := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithNamespace(metav1.NamespaceDefault))
	pi := pods.Core().V1().Pods().Informer()
	_ = pi.SetTransform(func(obj any) (any, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			p.ManagedFields = nil
		}
		return obj, nil
	})
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		app := p.Labels["app"]
		if _, ok := w.unsched[p.Name]; !ok && app == burstPool && unschedulablePod(p) {
			w.unsched[p.Name] = now
		}
		if p.Status.Phase == corev1.PodRunning && !w.seen[p.Name] {
			w.seen[p.Name] = true
			w.running[app]++
		}
	}
	_, _ = pi.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }})
	nodes := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = providers.LabelPool + "=" + burstPool
	}))
	ni := nodes.Core().V1().Nodes().Informer()
	_, _ = ni.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		n, ok := obj.(*corev1.Node)
		if !ok {
			return
		}
		at := time.Now()
		w.mu.Lock()
		w.created[n.Name] = at
		w.mu.Unlock()
	}})
	pods.Start(ctx.Done())
	nodes.Start(ctx.Done())
	for _, ok := range pods.WaitForCacheSync(ctx.Done()) {
		if !ok {
			b.Fatal("the benchmark's pod informer never synced")
		}
	}
	for _, ok := range nodes.WaitForCacheSync(ctx.Done()) {
		if !ok {
			b.Fatal("the benchmark's node informer never synced")
		}
	}
	return w
}

func unschedulablePod(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

// counts returns the machines created and the pods of app Running.
func (w *burstWatch) counts(app string) (machines, running int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.created), w.running[app]
}

// sorted returns the unschedulable times and the creation times, each in
// order.
func (w *burstWatch) sorted() (unsched, created []time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.unsched {
		unsched = append(unsched, t)
	}
	for _, t := range w.created {
		created = append(created, t)
	}
	cmp := func(a, b time.Time) int { return a.Compare(b) }
	slices.SortFunc(unsched, cmp)
	slices.SortFunc(created, cmp)
	return unsched, created
}

// waitPods waits until want pods of app are Running, or timeout; it
// returns when that was and whether it happened.
func waitPods(b *testing.B, env *Env, agent *Agent, w *burstWatch, app string, want int, timeout time.Duration) (time.Time, bool) {
	b.Helper()
	start := time.Now()
	lastLog := start
	for {
		machines, running := w.counts(app)
		if running >= want {
			return time.Now(), true
		}
		if err := agent.Check(); err != nil {
			b.Fatalf("the agent exited: %v", err)
		}
		if time.Since(start) > timeout {
			b.Logf("Not all pods of %s Running after %s: %d of %d, %d machines\n%s\n%s", app, timeout, running, want, machines,
				agent.LogTail(20), env.Diagnose(b.Context(), app))
			return time.Now(), false
		}
		if time.Since(lastLog) > 30*time.Second {
			b.Logf("Waiting for %s: %d of %d pods Running, %d machines (%s)", app, running, want, machines, time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func benchmarkBurst(b *testing.B, n, perNode int) {
	ctx := b.Context()
	pools := []Pool{{Name: burstPool, MinReplicas: 0, MaxReplicas: n, MachineType: "sim-2x8"}}
	env := Start(ctx, b, Options{Spec: Spec("scale", burstDelay.String(), pools)})
	agent, err := env.StartAgent("agent-1", "--resync=5s", "--profiling")
	if err != nil {
		b.Fatal(err)
	}
	if err := agent.WaitMetrics(ctx, time.Minute); err != nil {
		b.Fatal(err)
	}
	waitBench(b, env, agent, []Pool{{Name: burstPool}})
	dss, err := env.Client.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	w := watchBurst(b, env)

	b.ResetTimer()
	before := scrape(b, agent)
	start := time.Now()
	if err := env.RunPods(ctx, Pods{Name: burstPool, Replicas: int32(n), CPU: "1500m", Pool: burstPool}); err != nil {
		b.Fatal(err)
	}
	allRunning, ok := waitPods(b, env, agent, w, burstPool, n, burstTimeout)
	if !ok {
		b.Fatalf("the burst of %d pods never ran", n)
	}
	afterUp := scrape(b, agent)
	_, peak, err := agent.Memory()
	if err != nil {
		b.Fatal(err)
	}
	// A few resyncs more: a machine bought late is over-provisioning too.
	time.Sleep(15 * time.Second)
	settled := scrape(b, agent)
	machines, err := env.Provider.ListMachines(ctx)
	if err != nil {
		b.Fatal(err)
	}
	made := 0
	for _, m := range machines {
		if m.Pool == burstPool {
			made++
		}
	}
	b.StopTimer()

	unsched, created := w.sorted()
	// The k-th pod found unschedulable is the one the k-th machine is for:
	// the pods are alike, so which machine serves which does not matter.
	var lat []float64
	for i := range min(len(unsched), len(created)) {
		lat = append(lat, created[i].Sub(unsched[i]).Seconds())
	}
	slices.Sort(lat)
	allCreated := math.NaN()
	if len(created) >= n {
		allCreated = created[n-1].Sub(start).Seconds()
	}
	firstCreate, lastUnsched := math.NaN(), math.NaN()
	if len(created) > 0 {
		firstCreate = created[0].Sub(start).Seconds()
	}
	if len(unsched) > 0 {
		lastUnsched = unsched[len(unsched)-1].Sub(start).Seconds()
	}
	up := RequestsBetween(before, afterUp)
	const hist = "seed_autoscaler_scale_up_latency_seconds"
	agentP50, agentP99 := HistogramQuantile(before, settled, hist, 0.5), HistogramQuantile(before, settled, hist, 0.99)
	const mib = 1 << 20
	b.ReportMetric(quantile(lat, 0.5), "s-latency-p50")
	b.ReportMetric(quantile(lat, 0.99), "s-latency-p99")
	b.ReportMetric(agentP50, "s-agent-latency-p50")
	b.ReportMetric(agentP99, "s-agent-latency-p99")
	b.ReportMetric(allCreated, "s-all-created")
	b.ReportMetric(allRunning.Sub(start).Seconds(), "s-all-running")
	b.ReportMetric(float64(made-n), "machines-over")
	b.ReportMetric(float64(peak)/mib, "MiB-rss-peak")
	b.ReportMetric(up.Total, "req/burst")
	b.Logf("nodes=%d: %d DaemonSets; burst of %d pods: last found unschedulable at %.2fs, first create at %.2fs, all %d created at %.2fs, all Running at %.1fs",
		n, len(dss.Items), n, lastUnsched, firstCreate, n, allCreated, allRunning.Sub(start).Seconds())
	b.Logf("nodes=%d: pending → provider call p50 %.2fs p99 %.2fs watched (%d pods; target 0.5s / 1.5s); the agent's histogram p50 %.2fs p99 %.2fs (%.0f observations)",
		n, quantile(lat, 0.5), quantile(lat, 0.99), len(lat), agentP50, agentP99, settled[hist+"_count"]-before[hist+"_count"])
	b.Logf("nodes=%d: machines %d for %d pods (first-fit-decreasing: %d; target ≤ 1%% over); all creates issued in %.2fs (target ≤ 5s at 1,000)",
		n, made, n, n, allCreated)
	b.Logf("nodes=%d: agent RSS peak %.0f MiB; %.0f passes (p50 %.0f ms, p99 %.0f ms); requests %.0f (%s)", n, float64(peak)/mib,
		Passes(before, afterUp), PassQuantile(before, afterUp, 0.5)*1000, PassQuantile(before, afterUp, 0.99)*1000, up.Total, up)

	if perNode > 0 {
		restPods(b, env, agent, w, n, perNode)
	}
}

// restPods adds perNode small pods per machine (10m cpu: they fit beside
// the burst's) and reports the agent's RSS at rest once they run.
func restPods(b *testing.B, env *Env, agent *Agent, w *burstWatch, n, perNode int) {
	ctx := b.Context()
	const mib = 1 << 20
	empty, _, err := agent.Memory()
	if err != nil {
		b.Fatal(err)
	}
	total := n * perNode
	start := time.Now()
	if err := env.RunPods(ctx, Pods{Name: "rest", Replicas: int32(total), CPU: "10m", Pool: burstPool}); err != nil {
		b.Fatal(err)
	}
	timeout := burstTimeout
	if s := os.Getenv("SEED_BENCH_REST_TIMEOUT"); s != "" {
		if timeout, err = time.ParseDuration(s); err != nil {
			b.Fatalf("SEED_BENCH_REST_TIMEOUT: %v", err)
		}
	}
	at, _ := waitPods(b, env, agent, w, "rest", total, timeout)
	machines, running := w.counts("rest")
	b.Logf("nodes=%d: %d of %d small pods Running in %s (%.0f pods/s), %d machines", n, running, total,
		at.Sub(start).Round(time.Second), float64(running)/at.Sub(start).Seconds(), machines)
	time.Sleep(idleFor / 6)
	idleStart := scrape(b, agent)
	// The idle minute's CPU profile: where an idle pass spends its time.
	cpu := filepath.Join(os.TempDir(), fmt.Sprintf("seed-agent-cpu-idle-nodes-%d.pprof", n))
	if err := agent.CPUProfile(ctx, idleFor, cpu); err != nil {
		b.Fatal(err)
	}
	idleEnd := scrape(b, agent)
	b.Logf("nodes=%d: the agent's CPU profile of the idle minute: go tool pprof -top %s", n, cpu)
	rss, peak, err := agent.Memory()
	if err != nil {
		b.Fatal(err)
	}
	pods := running + n
	// Where the resident memory is: the Go heap's live objects, what the
	// collector lets it grow to before the next cycle, and the freed spans
	// not yet returned to the kernel.
	b.Logf("nodes=%d: at rest, Go heap: %.0f MiB of live objects, next collection at %.0f MiB, %.0f MiB idle and not yet released",
		n, idleEnd["go_memstats_heap_alloc_bytes"]/mib, idleEnd["go_memstats_next_gc_bytes"]/mib,
		(idleEnd["go_memstats_heap_idle_bytes"]-idleEnd["go_memstats_heap_released_bytes"])/mib)
	profile := filepath.Join(os.TempDir(), fmt.Sprintf("seed-agent-heap-nodes-%d.pprof", n))
	if err := agent.HeapProfile(ctx, profile); err != nil {
		b.Fatal(err)
	}
	b.Logf("nodes=%d: the agent's heap profile at rest: go tool pprof -sample_index=inuse_space -top %s", n, profile)
	b.ReportMetric(float64(rss)/mib, "MiB-rss-rest-pods")
	b.ReportMetric(float64(peak)/mib, "MiB-rss-peak-pods")
	b.ReportMetric(float64(rss-empty)/float64(max(running, 1))/1024, "KiB-rss/pod")
	b.Logf("nodes=%d: at rest with %d pods on %d nodes: agent RSS %.0f MiB (target ≤ 128 MiB at 30,000 pods on 1,000 nodes), peak %.0f MiB; %.0f MiB before the %d small pods, %.1f KiB a pod; idle pass p50 %.0f ms, p99 %.0f ms (%s), %.0f passes in %s, asked for by: %s",
		n, pods, machines, float64(rss)/mib, float64(peak)/mib, float64(empty)/mib, running, float64(rss-empty)/float64(max(running, 1))/1024,
		PassQuantile(idleStart, idleEnd, 0.5)*1000, PassQuantile(idleStart, idleEnd, 0.99)*1000, overTarget(b, n, idleStart, idleEnd),
		Passes(idleStart, idleEnd), idleFor, Wakes(idleStart, idleEnd))
}

// quantile is the q-quantile of sorted values (nearest rank), NaN for
// none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}
