package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/seedhq/seed/e2e/framework"
)

// BenchmarkUpgrade runs TestUpgrade's scenario without the kills, b.N
// times (a new cluster each; use -benchtime=1x), and reports the medians:
// the whole upgrade, the control-plane replacement (edit → new Node Ready,
// edit → replacement done), a worker's replacement, the longest API gap
// through the external endpoint and in-cluster, and the failed requests
// to the workload and to the API (both probes), per run. Each run's assertions still hold; a run that breaks
// one fails the benchmark.
func BenchmarkUpgrade(b *testing.B) {
	requireBench(b)
	requireNodeImages(b, upgradeFrom, upgradeTo)
	var whole, cpReady, cpDone, worker, apiExternal, apiInCluster []time.Duration
	failed, apiFailed := 0, 0
	for range b.N {
		u := runUpgrade(b, false)
		u.logFigures(b)
		whole = append(whole, u.done.Sub(u.edit))
		cpReady = append(cpReady, u.cpReady)
		cpDone = append(cpDone, u.cpDone)
		worker = append(worker, u.perWork...)
		apiExternal = append(apiExternal, u.figures.API.Longest)
		apiInCluster = append(apiInCluster, u.figures.InCluster.LongestGap)
		failed += u.figures.Workload.Failed
		apiFailed += u.figures.API.Failed + u.figures.InCluster.Failed
		// The next run starts from an engine at rest.
		u.d.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		if r := framework.Seed(ctx, "down", "-f", u.d.c.SpecFile, "--kubeconfig", u.d.c.Kubeconfig); r.Err != nil {
			b.Errorf("seed down: %v", r.Err)
		}
		cancel()
	}
	p50 := func(ds []time.Duration) float64 {
		if len(ds) == 0 {
			return 0
		}
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2].Seconds()
	}
	b.ReportMetric(p50(whole), "upgrade-p50-s")
	b.ReportMetric(p50(cpReady), "cp-ready-p50-s")
	b.ReportMetric(p50(cpDone), "cp-replace-p50-s")
	b.ReportMetric(p50(worker), "worker-p50-s")
	b.ReportMetric(p50(apiExternal), "api-gap-external-p50-s")
	b.ReportMetric(p50(apiInCluster), "api-gap-incluster-p50-s")
	b.ReportMetric(float64(failed)/float64(b.N), "failed-requests/op")
	b.ReportMetric(float64(apiFailed)/float64(b.N), "failed-api-requests/op")
}
