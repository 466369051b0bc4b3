package scaleenv

import (
	"math"
	"testing"
)

// Twelve passes, as a minute at rest with a 5s resync: eight under 100 ms,
// three between 150 and 175 ms, one between 250 and 300 ms.
func passSamples() (before, after Samples) {
	bucket := func(le string) string { return `seed_reconcile_duration_seconds_bucket{le="` + le + `"}` }
	before = Samples{bucket("0.1"): 5, bucket("0.15"): 5, bucket("0.175"): 5, bucket("0.2"): 5, bucket("0.25"): 5,
		bucket("0.3"): 5, bucket("+Inf"): 5, "seed_reconcile_duration_seconds_count": 5}
	after = Samples{bucket("0.1"): 13, bucket("0.15"): 13, bucket("0.175"): 16, bucket("0.2"): 16, bucket("0.25"): 16,
		bucket("0.3"): 17, bucket("+Inf"): 17, "seed_reconcile_duration_seconds_count": 17}
	return before, after
}

func TestPassesOverCountsThePassesAboveABucketBound(t *testing.T) {
	before, after := passSamples()
	if got := Passes(before, after); got != 12 {
		t.Fatalf("Passes = %v, want 12", got)
	}
	for bound, want := range map[float64]float64{0.2: 1, 0.1: 4, 0.3: 0, 0.175: 1} {
		if got := PassesOver(before, after, bound); got != want {
			t.Errorf("PassesOver(%v) = %v, want %v", bound, got, want)
		}
	}
	if got := PassesOver(before, after, 0.22); !math.IsNaN(got) {
		t.Errorf("PassesOver(0.22), no bucket's bound, = %v, want NaN", got)
	}
}

func TestHistogramQuantileInterpolatesWithinTheBucket(t *testing.T) {
	before, after := passSamples()
	// The 12th of 12 lies in (0.25, 0.3]; rank 11.88 is 0.88 of the way.
	got := HistogramQuantile(before, after, "seed_reconcile_duration_seconds", 0.99)
	if want := 0.25 + 0.05*0.88; math.Abs(got-want) > 1e-9 {
		t.Errorf("p99 = %v, want %v", got, want)
	}
	if got := HistogramQuantile(before, after, "seed_reconcile_duration_seconds", 0.5); got <= 0 || got > 0.1 {
		t.Errorf("p50 = %v, want within (0, 0.1]", got)
	}
}
