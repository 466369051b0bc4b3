package controller

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

// runKilledAt runs an agent that is killed the moment the ledger first
// records an operation of type op at step: after the write, before the step
// is taken. It returns once that agent has stopped; killed reports whether
// the moment came.
func (h *harness) runKilledAt(identity string, op plan.OperationType, step plan.Step, during func(), mutate ...func(*Options)) (killed bool) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := h.newReconciler(identity, mutate...)
	var hit atomic.Bool
	r.stepRecorded = func(_ context.Context, rec []recordedStep) {
		if slices.ContainsFunc(rec, func(s recordedStep) bool { return s.Op == op && s.Step == step }) && !hit.Swap(true) {
			cancel()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			h.t.Errorf("agent %s: %v", identity, err)
		}
	}()
	during()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("agent %s was never killed at %s/%s", identity, op, step)
	}
	return hit.Load()
}

func (h *harness) ledgerEntries() map[string]string {
	cm, err := h.admin.CoreV1().ConfigMaps(h.ns).Get(context.Background(), v1alpha1.LedgerConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return cm.Data
}

// Every step of every operation is recorded before it is taken, so an agent
// killed between any two steps leaves work that the next agent finishes:
// no duplicate machine, no orphan, no machine deleted undrained, no Node
// left behind.
func TestOperationsResumeAfterAKillBetweenEveryPairOfSteps(t *testing.T) {
	t.Run("create", func(t *testing.T) {
		h := newHarness(t, specYAML(0))
		killed := h.runKilledAt("agent-a", plan.OpCreate, plan.StepCreate, func() { h.setSpec(specYAML(2)) })
		if !killed {
			t.Fatal("the agent was not killed")
		}
		if n := len(h.workers("workers")); n != 0 {
			t.Fatalf("%d workers made by the killed agent; it was killed before asking", n)
		}
		if len(h.ledgerEntries()) != 2 {
			t.Fatalf("ledger %v: want the 2 recorded creations", h.ledgerEntries())
		}
		h.startAgent("agent-b")
		eventually(t, 20*time.Second, "2 workers", func() bool { return len(h.workers("workers")) == 2 })
		eventually(t, 10*time.Second, "the ledger to empty", func() bool { return len(h.ledgerEntries()) == 0 })
		consistently(t, time.Second, "exactly 2 workers", func() bool { return len(h.workers("workers")) == 2 })
		if got := h.provider.Requested(); got != 2 {
			t.Errorf("%d machines asked for, want 2: each recorded name once", got)
		}
	})
	for _, step := range []plan.Step{plan.StepDrain, plan.StepDeleteMachine, plan.StepDeleteNode} {
		t.Run("delete/"+string(step), func(t *testing.T) {
			h := newHarness(t, specYAML(2))
			var undrained atomic.Int32
			h.provider.OnDelete = func(name string) {
				pods, err := h.admin.CoreV1().Pods(h.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
				if err != nil || len(pods.Items) > 0 {
					undrained.Add(1)
				}
			}
			stop := h.startAgent("settle")
			eventually(t, 20*time.Second, "2 workers", func() bool { return len(h.workers("workers")) == 2 })
			eventually(t, 10*time.Second, "the ledger to empty", func() bool { return len(h.ledgerEntries()) == 0 })
			stop()
			for i, node := range h.workers("workers") {
				h.runPod(fmt.Sprintf("app-%d", i), node, map[string]string{"app": "web"})
			}
			before := h.provider.Requested()

			killed := h.runKilledAt("agent-a", plan.OpDelete, step, func() { h.setSpec(specYAML(1)) })
			if !killed {
				t.Fatal("the agent was not killed")
			}
			led := h.ledgerEntries()
			if len(led) != 1 {
				t.Fatalf("ledger %v: want the one recorded deletion", led)
			}
			var victim string
			for name, raw := range led {
				victim = name
				if !strings.Contains(raw, `"step":"`+string(step)+`"`) {
					t.Fatalf("ledger entry %s: %s, want step %s", name, raw, step)
				}
			}

			h.startAgent("agent-b")
			eventually(t, 20*time.Second, "1 worker", func() bool { return len(h.workers("workers")) == 1 })
			eventually(t, 10*time.Second, "the ledger to empty", func() bool { return len(h.ledgerEntries()) == 0 })
			eventually(t, 10*time.Second, "the victim's node to go", func() bool {
				_, err := h.admin.CoreV1().Nodes().Get(context.Background(), victim, metav1.GetOptions{})
				return apierrors.IsNotFound(err)
			})
			if slices.Contains(h.workers("workers"), victim) {
				t.Errorf("victim %s still exists", victim)
			}
			if undrained.Load() > 0 {
				t.Error("a machine was deleted with pods on it")
			}
			if got := h.provider.Requested() - before; got != 0 {
				t.Errorf("%d machines created during a scale-down", got)
			}
		})
	}
}

// A batch creation that fails part way (EC2 out of capacity after the first
// instances) made some machines: those are successes, and only the rest are
// failures, given up and planned afresh.
func TestPartialBatchFailureIsBlamedOnlyOnTheMachinesNotMade(t *testing.T) {
	h := newHarness(t, specYAML(1))
	metrics := NewMetrics(prometheus.NewRegistry())
	h.startAgent("agent-a", func(o *Options) { o.Metrics = metrics })
	eventually(t, 20*time.Second, "1 worker", func() bool { return len(h.workers("workers")) == 1 })
	eventually(t, 10*time.Second, "the ledger to empty", func() bool { return len(h.ledgerEntries()) == 0 })
	first := h.workers("workers")[0]
	h.provider.FailBatchAfter(1, providers.NewError(providers.KindCapacity, "creating machines", fmt.Errorf("InsufficientInstanceCapacity")))

	h.setSpec(specYAML(3))
	eventually(t, 20*time.Second, "3 workers", func() bool { return len(h.workers("workers")) == 3 })
	consistently(t, time.Second, "exactly 3 workers", func() bool { return len(h.workers("workers")) == 3 })
	failed := h.events("CreateFailed")
	if len(failed) != 1 {
		var msgs []string
		for _, e := range failed {
			msgs = append(msgs, e.Message)
		}
		t.Fatalf("%d CreateFailed events, want 1 (the machine not made): %q", len(failed), msgs)
	}
	for _, w := range h.workers("workers") {
		if w != first && strings.Contains(failed[0].Message, w) {
			t.Errorf("CreateFailed blames %s, which was made: %s", w, failed[0].Message)
		}
	}
	if got := testutil.ToFloat64(metrics.actions.WithLabelValues("Create", "error")); got != 1 {
		t.Errorf("seed_actions_total{action=Create,result=error} = %v, want 1", got)
	}
	if got := h.provider.Requested(); got != 3 {
		t.Errorf("%d machines made or asked again, want 3: 1, then 1 of a batch of 2 before capacity ran out, then 1 more", got)
	}
}

// A machine still being created (a create that keeps failing half way) can
// be chosen by a scale-down. The deletion supersedes the creation: the
// creation is not resumed, and the deletion is not lost to it.
func TestDeleteOfAMachineBeingCreatedSupersedesTheCreation(t *testing.T) {
	h := newHarness(t, specYAML(1))
	stop := h.startAgent("settle")
	eventually(t, 20*time.Second, "1 worker", func() bool { return len(h.workers("workers")) == 1 })
	eventually(t, 10*time.Second, "the ledger to empty", func() bool { return len(h.ledgerEntries()) == 0 })
	stop()
	// A creation the previous agent recorded and half made: listed, Pending.
	const half = "test-workers-halff"
	h.provider.InterruptCreates(1)
	if _, err := h.provider.CreateMachine(context.Background(), providers.MachineSpec{Name: half, Pool: "workers", Role: providers.RoleWorker}); err == nil {
		t.Fatal("the interrupted create succeeded")
	}
	led, err := h.admin.CoreV1().ConfigMaps(h.ns).Get(context.Background(), v1alpha1.LedgerConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	led.Data = map[string]string{half: fmt.Sprintf(`{"op":"create","step":"create","pool":"workers","role":"worker","recordedAt":%q}`,
		time.Now().UTC().Format(time.RFC3339))}
	if _, err := h.admin.CoreV1().ConfigMaps(h.ns).Update(context.Background(), led, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := h.provider.Requested()

	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "the half-made machine to go", func() bool { return !slices.Contains(h.workers("workers"), half) })
	eventually(t, 10*time.Second, "the ledger to empty", func() bool { return len(h.ledgerEntries()) == 0 })
	if got := h.provider.Requested() - before; got != 0 {
		t.Errorf("%d creations asked for after the machine was chosen for deletion", got)
	}
	var deleting int
	for _, e := range h.events("DeletingMachine") {
		if strings.Contains(e.Message, half) {
			deleting += int(e.Count)
		}
	}
	if deleting != 1 {
		t.Errorf("machine %s chosen for deletion %d times, want once", half, deleting)
	}
}

// Managed means what its doc says: the agent has matched the machine to the
// control plane or a pool it manages. An orphan in its grace period is not.
func TestStatusSaysWhichMachinesAreManaged(t *testing.T) {
	h := newHarness(t, specYAML(1))
	h.provider.Add(providers.Machine{Name: "stray", CreatedAt: time.Now()})
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "the worker and the stray in status", func() bool {
		return len(h.status().Machines) == 3
	})
	for _, m := range h.status().Machines {
		want := m.Name != "stray"
		if m.Managed != want {
			t.Errorf("machine %s: managed %v, want %v", m.Name, m.Managed, want)
		}
	}
}

// With nothing changing, the agent's passes write nothing: status is
// written when its content changes, not once a pass.
func TestSteadyStateWritesNoStatus(t *testing.T) {
	h := newHarness(t, specYAML(2))
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "the cluster to converge", func() bool {
		st := h.status()
		c := st.Condition(v1alpha1.ConditionReady)
		return c != nil && c.Status == "True"
	})
	version := func() string {
		cm, err := h.admin.CoreV1().ConfigMaps(h.ns).Get(context.Background(), v1alpha1.StatusConfigMap, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.ResourceVersion
	}
	rv := version()
	// Resync is 1s in the harness: three passes.
	consistently(t, 3*time.Second, "status to stay unwritten", func() bool { return version() == rv })
}

// A drain blocked by a budget steps again every pass; its reads of pods and
// budgets come from the caches, not from the API server.
func TestBlockedDrainListsNoPodsFromTheAPIServer(t *testing.T) {
	h := newHarness(t, specYAML(2))
	var lists atomic.Int32
	cfg := h.env.ServiceAccountConfig(h.ns, "seed-agent")
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			// Lists, not the informers' watches.
			if req.Method == http.MethodGet && req.URL.Query().Get("watch") != "true" &&
				(strings.HasSuffix(req.URL.Path, "/pods") || strings.HasSuffix(req.URL.Path, "/poddisruptionbudgets")) {
				lists.Add(1)
			}
			return rt.RoundTrip(req)
		})
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.startAgent("agent-a", func(o *Options) { o.Client = client })
	eventually(t, 20*time.Second, "2 workers", func() bool { return len(h.workers("workers")) == 2 })
	for i, node := range h.workers("workers") {
		h.runPod(fmt.Sprintf("db-%d", i), node, map[string]string{"app": "db"})
	}
	h.guardDB()
	h.setSpec(specYAML(1))
	eventually(t, 20*time.Second, "the drain to be blocked", func() bool {
		st := h.status()
		return len(st.Drains) == 1 && len(st.Drains[0].BlockedBy) > 0
	})
	before := lists.Load()
	// ProgressInterval is 200ms in the harness: about ten drain steps.
	time.Sleep(2 * time.Second)
	if got := lists.Load() - before; got != 0 {
		t.Errorf("%d live pod or budget lists during a blocked drain, want 0", got)
	}
	if ev := h.events("DrainBlocked"); len(ev) == 0 {
		t.Error("no DrainBlocked event")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
