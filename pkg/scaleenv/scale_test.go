package scaleenv

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

// convergeTimeout bounds each wait for convergence. It is no timing
// assertion (the benchmark measures); it only stops a stuck run.
const convergeTimeout = 15 * time.Minute

// TestScale1000 runs the real agent binary at 1,000 simulated machines in
// three pools: it creates them, scales two pools up and is SIGKILLed while
// the new machines are being made, a fresh agent takes over, and a pool
// scales down, draining the pods on it. After each step the machines are
// exactly the spec's, every one Running with a Ready Node registered as
// its pool says, with no duplicate, no orphan, nothing left in the ledger,
// and the workload whole again.
func TestScale1000(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand machines take minutes")
	}
	ctx := t.Context()
	pools := []Pool{
		{Name: "general", Replicas: 400, MachineType: "sim-2x8"},
		{Name: "batch", Replicas: 350, MachineType: "sim-4x16", Labels: map[string]string{"workload": "batch"},
			Taints: []v1alpha1.Taint{{Key: "dedicated", Value: "batch", Effect: "NoSchedule"}}},
		{Name: "web", Replicas: 250, Labels: map[string]string{"tier": "web"}},
	}
	env := Start(ctx, t, Options{Spec: Spec("scale", "1s", pools)})
	if err := env.RunWorkload(ctx, "app", 300); err != nil {
		t.Fatal(err)
	}
	first, err := env.StartAgent("agent-1")
	if err != nil {
		t.Fatal(err)
	}
	waitConverged(t, env, first, pools, "the first 1,000 machines")

	// Scale up by 200 and kill the agent while the creations are under
	// way: the ledger holds them, and some machines exist already. A watch
	// sees the new Nodes within milliseconds of their creation, and the
	// 200 take about a second, so the kill lands in the middle.
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "seed.dev/cluster=scale"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := env.Client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{LabelSelector: "seed.dev/cluster=scale",
		ResourceVersion: nodes.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	pools[0].Replicas, pools[2].Replicas = 500, 350
	if err := env.SetSpec(ctx, Spec("scale", "1s", pools)); err != nil {
		t.Fatal(err)
	}
	for added := 0; added < 10; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the watch of Nodes ended before the scale-up began")
			}
			if ev.Type == watch.Added {
				added++
			}
		case <-time.After(convergeTimeout):
			t.Fatalf("no new Node within %s of the scale-up", convergeTimeout)
		}
	}
	first.Kill()
	w.Stop()
	atKill, err := env.Observe(ctx, pools)
	if err != nil {
		t.Fatal(err)
	}
	made := len(atKill.Machines["general"]) + len(atKill.Machines["web"]) - 650
	t.Logf("Killed the agent mid scale-up: %d of 200 new machines made, %d creations recorded", made, len(atKill.Ledger))
	if len(atKill.Ledger) == 0 {
		t.Error("the kill came after the scale-up: the ledger is empty")
	}
	second, err := env.StartAgent("agent-2")
	if err != nil {
		t.Fatal(err)
	}
	final := waitConverged(t, env, second, pools, "the scale-up of 200 after the kill")
	// The creations the killed agent recorded were resumed under their
	// names, not abandoned for new ones.
	exists := map[string]bool{}
	for _, ms := range final.Machines {
		for _, m := range ms {
			exists[m.Name] = true
		}
	}
	for _, name := range atKill.Ledger {
		if !exists[name] {
			t.Errorf("machine %s, recorded by the killed agent, was not made: the new agent replaced it", name)
		}
	}

	// Scale down the untainted web pool, where the workload runs.
	pools[2].Replicas = 150
	if err := env.SetSpec(ctx, Spec("scale", "1s", pools)); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, env, second, pools, "the scale-down of 200")
}

// waitConverged waits for Observe to find the pools exactly and the
// workload ready, failing with what is still missing.
func waitConverged(t *testing.T, env *Env, agent *Agent, pools []Pool, what string) Observation {
	t.Helper()
	ctx := t.Context()
	start := time.Now()
	var last Observation
	waitFor(t, agent, what, 2*time.Second, func() (bool, string) {
		o, err := env.Observe(ctx, pools)
		if err != nil {
			return false, err.Error()
		}
		last = o
		why := o.Converged(pools)
		if ready, want, err := env.WorkloadReady(ctx, "app"); err != nil || ready != want {
			why += fmt.Sprintf("; workload %d of %d ready (%v)", ready, want, err)
		}
		return why == "", why
	}, func() string { return env.Diagnose(ctx, "app") })
	t.Logf("Converged: %s (%s)", what, time.Since(start).Round(time.Second))
	return last
}

func waitFor(t *testing.T, agent *Agent, what string, interval time.Duration, cond func() (bool, string), diagnose ...func() string) {
	t.Helper()
	deadline := time.Now().Add(convergeTimeout)
	why := ""
	for {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
		if err := agent.Check(); err != nil {
			t.Fatalf("waiting for %s: the agent exited: %v", what, err)
		}
		if time.Now().After(deadline) {
			var diag string
			for _, d := range diagnose {
				diag += d()
			}
			t.Fatalf("waiting for %s: not there after %s: %s\nagent's last lines:\n%s\n%s", what, convergeTimeout, why, agent.LogTail(30), diag)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(interval):
		}
	}
}
