package aws

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkScaleUp reports the EC2 calls one scale-up of N workers costs:
// warm (an agent that already found the network and image, the steady
// state) and cold (its first scale-up), and a full round (the executor's
// ListMachines after the write, plus the scale-up).
func BenchmarkScaleUp(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			ctx := context.Background()
			var warm, cold, round int
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e := newEnv(b)
				e.ensure(b)
				p := e.restart(b)
				e.ec2.ResetCalls()
				if _, err := p.CreateMachines(ctx, workers("first", 1)); err != nil {
					b.Fatal(err)
				}
				cold += e.ec2.TotalCalls()
				e.ec2.ResetCalls()
				b.StartTimer()

				if _, err := p.CreateMachines(ctx, workers("w", n)); err != nil {
					b.Fatal(err)
				}
				warm += e.ec2.TotalCalls()
				if _, err := p.ListMachines(ctx); err != nil {
					b.Fatal(err)
				}
				round += e.ec2.TotalCalls()
			}
			b.ReportMetric(float64(warm)/float64(b.N), "ec2-calls/scale-up")
			b.ReportMetric(float64(round)/float64(b.N), "ec2-calls/round")
			b.ReportMetric(float64(cold)/float64(b.N), "ec2-calls/first-scale-up-of-1")
		})
	}
}

// BenchmarkIdleMinute reports the EC2 calls of an idle agent that lists
// its machines every 10 seconds for a minute.
func BenchmarkIdleMinute(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	e.ensure(b)
	p := e.restart(b)
	if _, err := p.CreateMachines(ctx, workers("w", 10)); err != nil {
		b.Fatal(err)
	}
	_, _ = p.ListMachines(ctx)
	e.ec2.ResetCalls()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for s := 0; s < 6; s++ {
			if _, err := p.ListMachines(ctx); err != nil {
				b.Fatal(err)
			}
			e.clock.Advance(10 * time.Second)
		}
	}
	b.ReportMetric(float64(e.ec2.TotalCalls())/float64(b.N), "ec2-calls/idle-minute")
}
