package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/providers"

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

// firstCreateEvent returns when the engine created the cluster's first
// container since start, from its event log (the engine's clock is the
// host's). A container is listed before the engine logs its creation, so
// the log is read until the event is there.
func firstCreateEvent(b *testing.B, cluster string, start time.Time) time.Time {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := framework.Docker(b, "events", "--since", strconv.FormatInt(start.Unix(), 10), "--until", strconv.FormatInt(time.Now().Unix(), 10),
			"--filter", "type=container", "--filter", "event=create", "--filter", "label="+providers.LabelCluster+"="+cluster,
			"--format", "{{.TimeNano}}")
		var first time.Time
		for _, line := range strings.Fields(out) {
			ns, err := strconv.ParseInt(line, 10, 64)
			if err != nil {
				b.Fatalf("docker events: unexpected line %q", line)
			}
			if t := time.Unix(0, ns); !t.Before(start) && (first.IsZero() || t.Before(first)) {
				first = t
			}
		}
		if !first.IsZero() {
			return first
		}
		if time.Now().After(deadline) {
			b.Fatalf("no create event for cluster %s since %s", cluster, start)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
