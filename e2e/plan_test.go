package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/cluster"
)

// TestPlanPreviewsWhatTheAgentDoes: for a scale from 1 to 3 workers, `seed
// plan` shows exactly the two creates the agent then makes; for an invalid
// change it gives the agent's own error; and it changes nothing.
func TestPlanPreviewsWhatTheAgentDoes(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-plan")
	spec := func(n int, version string) string {
		return framework.SpecYAML(name, version, framework.Pools(framework.Pool("workers", n)))
	}
	c := framework.Up(t, name, spec(1, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	framework.Eventually(t, 5*time.Minute, "1 Ready worker, converged", func() (bool, string) {
		_, ready, _ := c.PoolNodes(ctx, "workers")
		st, err := c.Status(ctx)
		return ready == 1 && err == nil && len(st.Plan) == 0, fmt.Sprintf("%d Ready, status error %v", ready, err)
	})
	plan := func(spec string, args ...string) framework.Result {
		file := filepath.Join(t.TempDir(), "cluster.yaml")
		if err := os.WriteFile(file, []byte(spec), 0o600); err != nil {
			t.Fatal(err)
		}
		return framework.Seed(ctx, slices.Concat([]string{"plan", "-f", file, "--kubeconfig", c.Kubeconfig}, args)...)
	}
	snapshot := func() string {
		led, err := c.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.LedgerConfigMap, metav1.GetOptions{})
		rv := "none"
		if err == nil {
			rv = led.ResourceVersion
		}
		machines, _, _ := framework.Owned(t, name)
		slices.Sort(machines)
		return "ledger " + rv + ", machines " + strings.Join(machines, ",")
	}
	before := snapshot()

	r := plan(spec(3, ""), "-o", "json")
	if r.Err != nil {
		t.Fatalf("seed plan: %v\n%s", r.Err, r.Stderr)
	}
	var pv cluster.Preview
	if err := json.Unmarshal([]byte(r.Stdout), &pv); err != nil {
		t.Fatalf("seed plan -o json: %v\n%s", err, r.Stdout)
	}
	var planned []string
	for _, a := range pv.Actions {
		planned = append(planned, a.Action+" "+a.Pool)
	}
	if !slices.Equal(planned, []string{"Create workers", "Create workers"}) {
		t.Errorf("seed plan for 1 → 3 workers: %v, want exactly two creates in pool workers\n%s", planned, r.Stdout)
	}
	if r := plan(spec(3, "")); r.Err != nil || strings.Count(r.Stdout, "Create ") != 2 {
		t.Errorf("seed plan (table): %v\n%s", r.Err, r.Stdout)
	}

	// An invalid change: the same error the agent gives when it is applied.
	bad := spec(1, "v1.33.13")
	r = plan(bad)
	if r.Err == nil {
		t.Fatalf("seed plan of a downgrade succeeded:\n%s", r.Stdout)
	}
	if after := snapshot(); after != before {
		t.Errorf("seed plan changed the cluster: %s before, %s after", before, after)
	}
	c.EditSpec(ctx, t, bad)
	var agentErr string
	framework.Eventually(t, time.Minute, "the agent to reject the downgrade", func() (bool, string) {
		st, err := c.Status(ctx)
		if err == nil {
			agentErr = st.SpecError
		}
		return agentErr != "", fmt.Sprint(err)
	})
	for _, line := range strings.Split(agentErr, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.Contains(r.Stderr, line) {
			t.Errorf("the agent says %q; seed plan did not:\n%s", line, r.Stderr)
		}
	}

	// Applied, the scale makes exactly the creates seed plan showed.
	c.EditSpec(ctx, t, spec(3, ""))
	framework.Eventually(t, 6*time.Minute, "3 Ready workers", func() (bool, string) {
		names, ready, _ := c.PoolNodes(ctx, "workers")
		return ready == 3, fmt.Sprintf("nodes %v, %d Ready", names, ready)
	})
	if got := framework.PoolContainers(t, name, "workers"); len(got) != 3 {
		t.Errorf("the agent made %v, want the original worker and the 2 planned", got)
	}
}
