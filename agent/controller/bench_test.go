package controller

import (
	"slices"
	"testing"
	"time"

	"github.com/seedhq/seed/providers"
)

// BenchmarkSpecEditToProviderCall measures the time from a spec ConfigMap
// update (scale a pool up by one) to the agent's first CreateMachine call,
// on a real API server. Run with -benchtime=30x; it reports p50 and p95.
func BenchmarkSpecEditToProviderCall(b *testing.B) {
	h := newHarness(b, specYAML(0))
	created := make(chan time.Time, 64)
	h.provider.OnCreate = func(m providers.Machine) {
		created <- time.Now()
		go h.registerNode(m.Name, m.Pool, true)
	}
	h.startAgent("agent-bench")
	eventually(b, 10*time.Second, "the agent to settle", func() bool { return h.status().AppliedSpecVersion != "" })

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		h.setSpec(specYAML(i + 1))
		select {
		case at := <-created:
			lat = append(lat, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatalf("no CreateMachine within 10s of edit %d", i+1)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.95).Microseconds())/1000, "p95-ms")
}
