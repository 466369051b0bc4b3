package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seedhq/seed/e2e/framework"
)

// BenchmarkBackupRestore times the restore drill's steps on one cluster
// with backups enabled: `seed backup` (every namespace; the drill's holds
// a ConfigMap, a Secret and a Deployment), and, once the namespace is
// deleted, `seed restore --from` it and the time until its pod runs again.
// Each is reported as p50 over b.N drills (hack/bench.sh backup).
func BenchmarkBackupRestore(b *testing.B) {
	requireBench(b)
	framework.RequireBackupImages(b)
	name := framework.NewName("bench-backup")
	framework.DeleteBackupsAtEnd(b, name)
	c := framework.Up(b, name, framework.SpecYAML(name, "", framework.BackupsSpec))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	ready := c.WaitBackupsReady(ctx, b, 5*time.Minute)
	b.Logf("backups ready %s after seed up", ready.Round(time.Second))
	flags := []string{"--name", name, "--kubeconfig", c.Kubeconfig}
	var backups, restores, running []time.Duration
	for i := range b.N {
		w := newDrillWorkload(fmt.Sprintf("drill-%d", i))
		w.create(ctx, b, c.Client, true)
		backup := fmt.Sprintf("%s-%d", name, i)
		r := framework.Seed(ctx, append([]string{"backup", backup}, flags...)...)
		if r.Err != nil {
			b.Fatalf("seed backup: %v\n%s", r.Err, r.Stderr)
		}
		backups = append(backups, r.Duration)
		deleteNamespace(ctx, b, c.Client, w.Namespace)
		r = framework.Seed(ctx, append([]string{"restore", "--from", backup}, flags...)...)
		if r.Err != nil {
			b.Fatalf("seed restore: %v\n%s", r.Err, r.Stderr)
		}
		restores = append(restores, r.Duration)
		w.check(ctx, b, c.Client, true)
		running = append(running, r.Duration+w.waitRunning(ctx, b, c.Client, 3*time.Minute))
		b.Logf("drill %d: backup %s, restore %s, pod running %s after the restore began", i,
			backups[i].Round(10*time.Millisecond), restores[i].Round(10*time.Millisecond), running[i].Round(10*time.Millisecond))
	}
	p50 := func(d []time.Duration) float64 { d = slices.Clone(d); slices.Sort(d); return d[len(d)/2].Seconds() }
	b.ReportMetric(p50(backups), "backup-p50-s")
	b.ReportMetric(p50(restores), "restore-p50-s")
	b.ReportMetric(p50(running), "restore-to-running-p50-s")
}
