package e2e

import (
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var deleteNow = metav1.DeleteOptions{}

// requireBench skips benchmarks unless hack/bench.sh prepared the images.
func requireBench(b *testing.B) {
	if os.Getenv("SEED_E2E") != "1" || os.Getenv("SEED_AGENT_IMAGE") == "" {
		b.Skip("run through hack/bench.sh, which builds the images")
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
