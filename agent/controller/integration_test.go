package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/fake"
)

func TestScaleUpCreatesExactlyTheMissingMachines(t *testing.T) {
	h := newHarness(t, specYAML(1))
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "1 worker", func() bool { return len(h.workers("workers")) == 1 })
	eventually(t, 10*time.Second, "status to show the pool converged", func() bool {
		st := h.status()
		return len(st.Pools) > 0 && slices.ContainsFunc(st.Pools, func(p v1alpha1.PoolStatus) bool {
			return p.Name == "workers" && p.Ready == 1 && p.Desired == 1
		})
	})
	before := h.provider.Requested()

	h.setSpec(specYAML(3))
	eventually(t, 20*time.Second, "3 workers", func() bool { return len(h.workers("workers")) == 3 })
	consistently(t, 2*time.Second, "exactly 3 workers", func() bool { return len(h.workers("workers")) == 3 })
	if got := h.provider.Requested() - before; got != 2 {
		t.Errorf("machines asked of the provider for 1→3: got %d, want 2", got)
	}
	// Every new machine got its own join bootstrap.
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bootstraps) != 3 {
		t.Errorf("bootstraps rendered: got %v, want 3", h.bootstraps)
	}
	st := h.status()
	if c := st.Condition(v1alpha1.ConditionAdopted); c == nil || c.Status != "True" {
		t.Errorf("Adopted condition: got %+v, want True", c)
	}
	if got := len(h.events("CreatingMachine")); got < 3 {
		t.Errorf("CreatingMachine events: got %d, want 3", got)
	}
}

func TestScaleDownDrainsThenDeletes(t *testing.T) {
	h := newHarness(t, specYAML(3))
	// When a machine is deleted, its node must already be empty. The hook
	// runs after the fake has dropped the machine, so the test waits for
	// both checks to finish, not merely for the machines to be gone.
	var checked, drainedFirst atomic.Int32
	h.provider.OnDelete = func(name string) {
		defer checked.Add(1)
		pods, err := h.admin.CoreV1().Pods(h.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
		if err != nil {
			t.Errorf("listing pods of deleted machine %s: %v", name, err)
			return
		}
		for _, p := range pods.Items {
			t.Errorf("machine %s deleted with pod %s still on it (deleting since %v)", name, p.Name, p.DeletionTimestamp)
		}
		if len(pods.Items) == 0 {
			drainedFirst.Add(1)
		}
	}
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "3 workers", func() bool { return len(h.workers("workers")) == 3 })
	for i, node := range h.workers("workers") {
		h.runPod(fmt.Sprintf("app-%d", i), node, map[string]string{"app": "web"})
	}

	h.setSpec(specYAML(1))
	eventually(t, 30*time.Second, "1 worker", func() bool { return len(h.workers("workers")) == 1 })
	eventually(t, 10*time.Second, "both deletions checked", func() bool { return checked.Load() == 2 })
	if drainedFirst.Load() != 2 {
		t.Errorf("deleted 2 machines, %d of them drained first; want 2", drainedFirst.Load())
	}
	// Their Nodes went too, and the survivor was never cordoned.
	eventually(t, 10*time.Second, "only the survivor's node to remain", func() bool {
		nodes, _ := h.admin.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: providers.LabelPool + "=workers,seed.dev/test-namespace=" + h.ns})
		return len(nodes.Items) == 1 && nodes.Items[0].Name == h.workers("workers")[0] && !nodes.Items[0].Spec.Unschedulable
	})
}

func TestPDBBlockingADrainShowsInStatus(t *testing.T) {
	h := newHarness(t, specYAML(2))
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "2 workers", func() bool { return len(h.workers("workers")) == 2 })
	for i, node := range h.workers("workers") {
		h.runPod(fmt.Sprintf("db-%d", i), node, map[string]string{"app": "db"})
	}
	h.guardDB()

	h.setSpec(specYAML(1))
	want := h.ns + "/db"
	eventually(t, 20*time.Second, "status to name the blocking PDB", func() bool {
		st := h.status()
		return len(st.Drains) == 1 && slices.Contains(st.Drains[0].BlockedBy, want)
	})
	eventually(t, 10*time.Second, "a DrainBlocked event naming the PDB", func() bool {
		return slices.ContainsFunc(h.events("DrainBlocked"), func(e corev1.Event) bool { return strings.Contains(e.Message, want) })
	})
	// The budget holds: the machine stays until drainTimeout.
	consistently(t, 2*time.Second, "both workers to remain while blocked", func() bool { return len(h.workers("workers")) == 2 })
}

func TestDrainTimeoutDeletesAnyway(t *testing.T) {
	h := newHarness(t, specYAML(2, "  rollout:\n    drainTimeout: 2s"))
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "2 workers", func() bool { return len(h.workers("workers")) == 2 })
	for i, node := range h.workers("workers") {
		h.runPod(fmt.Sprintf("db-%d", i), node, map[string]string{"app": "db"})
	}
	h.guardDB()
	h.setSpec(specYAML(1, "  rollout:\n    drainTimeout: 2s"))
	eventually(t, 20*time.Second, "1 worker after the drain timed out", func() bool { return len(h.workers("workers")) == 1 })
	// The event says what the drain gave up on, also when the agent that
	// gives up is not the one that saw the budget refuse. Events are sent
	// in the background, so it may land after the machine is gone.
	eventually(t, 10*time.Second, "a DrainTimedOut event naming the budget and the pods left", func() bool {
		return slices.ContainsFunc(h.events("DrainTimedOut"), func(e corev1.Event) bool {
			return strings.Contains(e.Message, h.ns+"/db") && strings.Contains(e.Message, "1 pods left")
		})
	})
}

func TestInvalidSpecMakesNoProviderCalls(t *testing.T) {
	h := newHarness(t, specYAML(-1))
	h.startAgent("agent-a")
	eventually(t, 10*time.Second, "an InvalidSpec event", func() bool { return len(h.events("InvalidSpec")) > 0 })
	eventually(t, 10*time.Second, "status to carry the spec error", func() bool {
		return strings.Contains(h.status().SpecError, "spec.nodePools[0].replicas")
	})
	consistently(t, 2*time.Second, "zero provider calls", func() bool { return h.provider.TotalCalls() == 0 })

	h.setSpec(specYAML(2))
	eventually(t, 20*time.Second, "2 workers once the spec is fixed", func() bool { return len(h.workers("workers")) == 2 })
	eventually(t, 10*time.Second, "the spec error to clear", func() bool {
		st := h.status()
		c := st.Condition(v1alpha1.ConditionSpecValid)
		return st.SpecError == "" && c != nil && c.Status == "True"
	})
}

func TestInvalidEditKeepsLastGoodSpec(t *testing.T) {
	h := newHarness(t, specYAML(2))
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "2 workers", func() bool { return len(h.workers("workers")) == 2 })
	creates, deletes := h.provider.Calls(fake.MethodCreateMachine), h.provider.Calls(fake.MethodDeleteMachine)

	for _, bad := range []string{
		specYAML(5, "  nodePoolz: []"),                        // unknown field
		specYAML(50000),                                       // absurd
		strings.Replace(specYAML(0), "v1.34.2", "v1.32.0", 1), // downgrade
		"spec: [unclosed",                                     // not YAML
	} {
		n := len(h.events("InvalidSpec"))
		h.setSpec(bad)
		eventually(t, 10*time.Second, "the bad spec to be rejected", func() bool { return len(h.events("InvalidSpec")) > n })
	}
	consistently(t, 2*time.Second, "no machine created or deleted", func() bool {
		return h.provider.Calls(fake.MethodCreateMachine) == creates && h.provider.Calls(fake.MethodDeleteMachine) == deletes
	})
	// A restarted agent still acts on the last good spec, not the broken one.
	h.provider.Remove(h.workers("workers")[0])
	eventually(t, 20*time.Second, "the lost worker to be replaced under the last good spec", func() bool {
		return len(h.workers("workers")) == 2
	})
}

func TestRestartMidPlanCreatesNoDuplicates(t *testing.T) {
	h := newHarness(t, specYAML(0))
	// The agent dies right after the provider made each machine, before it
	// could see the result.
	var crash atomic.Pointer[func()]
	var made atomic.Int32
	h.provider.OnCreate = func(m providers.Machine) {
		if made.Add(1) == 2 {
			if stop := crash.Load(); stop != nil {
				go (*stop)()
			}
		}
	}
	h.provider.Delay(fake.MethodCreateMachine, 100*time.Millisecond)
	stop := h.startAgent("agent-a")
	crash.Store(&stop)
	eventually(t, 10*time.Second, "the first agent to settle", func() bool { return h.status().AppliedSpecVersion != "" })
	h.setSpec(specYAML(3))
	eventually(t, 20*time.Second, "the crash", func() bool { return made.Load() >= 2 })
	stop()

	h.provider.OnCreate = func(m providers.Machine) { h.registerNode(m.Name, m.Pool, true) }
	for _, m := range h.provider.Machines() {
		h.registerNode(m.Name, m.Pool, true)
	}
	h.startAgent("agent-b")
	eventually(t, 20*time.Second, "3 workers", func() bool { return len(h.workers("workers")) == 3 })
	consistently(t, 2*time.Second, "exactly 3 workers", func() bool { return len(h.workers("workers")) == 3 })
	eventually(t, 10*time.Second, "the ledger to empty", func() bool {
		cm, err := h.admin.CoreV1().ConfigMaps(h.ns).Get(context.Background(), v1alpha1.LedgerConfigMap, metav1.GetOptions{})
		return err == nil && len(cm.Data) == 0
	})
}

// A create the provider began but did not finish (the agent killed between
// creating a container and starting it) lists the machine, Pending. The
// agent must ask again, not take the listing for success: only a finished
// call clears the ledger. Found by the e2e crash spec, where three such
// containers sat in Created for ten minutes.
func TestInterruptedCreateIsFinished(t *testing.T) {
	h := newHarness(t, specYAML(0))
	h.provider.InterruptCreates(2)
	h.startAgent("agent-a")
	eventually(t, 10*time.Second, "the agent to settle", func() bool { return h.status().AppliedSpecVersion != "" })
	h.setSpec(specYAML(2))
	eventually(t, 20*time.Second, "2 Running workers", func() bool {
		running := 0
		for _, m := range h.provider.Machines() {
			if m.Pool == "workers" && m.Phase == providers.PhaseRunning {
				running++
			}
		}
		return running == 2
	})
	if got := len(h.workers("workers")); got != 2 {
		t.Errorf("%d workers, want 2", got)
	}
	if asked := h.provider.Requested(); asked < 4 {
		t.Errorf("%d machines asked for, want at least 4: two interrupted, two finishing them", asked)
	}
	eventually(t, 10*time.Second, "the ledger to empty", func() bool {
		cm, err := h.admin.CoreV1().ConfigMaps(h.ns).Get(context.Background(), v1alpha1.LedgerConfigMap, metav1.GetOptions{})
		return err == nil && len(cm.Data) == 0
	})
}

func TestTwoAgentsWithLeaderElectionNeverBothAct(t *testing.T) {
	h := newHarness(t, specYAML(1))
	// Record which agent makes each provider call; overlapping activity
	// between the two shows up as interleaved identities.
	var mu sync.Mutex
	var callers []string
	active := map[string]bool{}
	start := func(id string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- RunAsLeader(ctx, LeaderOptions{Client: h.agent, Namespace: h.ns, Lease: v1alpha1.LeaseName, Identity: id,
				LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 250 * time.Millisecond},
				func(ctx context.Context) {
					mu.Lock()
					active[id] = true
					mu.Unlock()
					defer func() { mu.Lock(); active[id] = false; mu.Unlock() }()
					r := h.newReconciler(id, func(o *Options) { o.Provider = recording{Provider: h.provider, id: id, mu: &mu, callers: &callers} })
					_ = r.Run(ctx)
				})
		}()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
					t.Logf("agent %s: %v", id, err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	stopA := start("agent-a")
	eventually(t, 10*time.Second, "agent-a to lead", func() bool { mu.Lock(); defer mu.Unlock(); return active["agent-a"] })
	start("agent-b")
	eventually(t, 20*time.Second, "1 worker", func() bool { return len(h.workers("workers")) == 1 })
	consistently(t, 3*time.Second, "only one leader", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !active["agent-a"] || !active["agent-b"]
	})
	mu.Lock()
	for _, c := range callers {
		if c != "agent-a" {
			t.Errorf("agent-b called the provider while agent-a led: %v", callers)
			break
		}
	}
	mu.Unlock()

	stopA() // releases the Lease
	eventually(t, 10*time.Second, "agent-b to take over", func() bool { mu.Lock(); defer mu.Unlock(); return active["agent-b"] })
	h.setSpec(specYAML(2))
	eventually(t, 20*time.Second, "agent-b to scale to 2", func() bool { return len(h.workers("workers")) == 2 })
	mu.Lock()
	defer mu.Unlock()
	last := callers[len(callers)-1]
	if last != "agent-b" {
		t.Errorf("last provider call by %s, want agent-b", last)
	}
}

// recording is a provider that notes which agent called it.
type recording struct {
	providers.Provider
	id      string
	mu      *sync.Mutex
	callers *[]string
}

func (r recording) note() { r.mu.Lock(); *r.callers = append(*r.callers, r.id); r.mu.Unlock() }

func (r recording) CreateMachine(ctx context.Context, s providers.MachineSpec) (providers.Machine, error) {
	r.note()
	return r.Provider.CreateMachine(ctx, s)
}

func (r recording) DeleteMachine(ctx context.Context, name string) error {
	r.note()
	return r.Provider.DeleteMachine(ctx, name)
}

func (r recording) ListMachines(ctx context.Context) ([]providers.Machine, error) {
	r.note()
	return r.Provider.ListMachines(ctx)
}

// runPod places a running pod on node, as the scheduler and kubelet would.
func (h *harness) runPod(name, node string, labels map[string]string, mutate ...func(*corev1.Pod)) {
	h.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.invalid/app:1"}}},
	}
	for _, m := range mutate {
		m(pod)
	}
	pod, err := h.admin.CoreV1().Pods(h.ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := h.admin.CoreV1().Pods(h.ns).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// guardDB puts a PodDisruptionBudget "db" on the pods labelled app=db that
// allows no eviction while two of them run.
func (h *harness) guardDB() {
	h.t.Helper()
	minAvailable := intstr.FromInt32(2)
	if _, err := h.admin.PolicyV1().PodDisruptionBudgets(h.ns).Create(context.Background(), &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
	}, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func gracePeriod(seconds int64) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = &seconds }
}

// On a node whose kubelet stopped reporting (Ready Unknown), nothing will
// ever confirm a pod's deletion: the drain waits out the pod's grace period,
// as its kubelet would have, and no longer.
func TestDrainOfAnUnreachableNodeWaitsOnlyForTheGracePeriod(t *testing.T) {
	h := newHarness(t, specYAML(2))
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "2 workers", func() bool { return len(h.workers("workers")) == 2 })
	victim := h.workers("workers")[1]
	h.runPod("stuck", victim, map[string]string{"app": "web"}, gracePeriod(2))
	h.killNode(victim)
	var early atomic.Bool
	h.provider.OnDelete = func(name string) {
		pod, err := h.admin.CoreV1().Pods(h.ns).Get(context.Background(), "stuck", metav1.GetOptions{})
		if err == nil && (pod.DeletionTimestamp == nil || time.Now().Before(pod.DeletionTimestamp.Time)) {
			early.Store(true)
		}
	}

	// Default drainTimeout is 10m: the machine must go long before that.
	h.setSpec(specYAML(1))
	eventually(t, 20*time.Second, "the unreachable worker to be removed", func() bool {
		return !slices.Contains(h.workers("workers"), victim) && len(h.workers("workers")) == 1
	})
	if early.Load() {
		t.Error("the machine was deleted before its terminating pod's grace period ran out")
	}
	if len(h.events("DrainTimedOut")) != 0 {
		t.Error("the drain timed out instead of skipping pods that cannot terminate")
	}
}

// A NotReady node whose kubelet still reports (Ready False: a starting pod
// network, a kubelet restart) is still running its pods' shutdown: a drain
// waits for their deletion to complete and never takes a terminating pod
// there for gone. (The drain once did, and deleted such machines under load.)
func TestDrainWaitsForTerminatingPodsOnANodeThatStillReports(t *testing.T) {
	h := newHarness(t, specYAML(2))
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "2 workers", func() bool { return len(h.workers("workers")) == 2 })
	victim := h.workers("workers")[1]
	h.runPod("slow", victim, map[string]string{"app": "web"}, gracePeriod(3600))
	// A slow shutdown: the stand-in kubelet does not finish the deletion.
	h.mu.Lock()
	h.dead = map[string]bool{victim: true}
	h.mu.Unlock()
	node, err := h.admin.CoreV1().Nodes().Get(context.Background(), victim, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse,
		LastTransitionTime: metav1.Now(), LastHeartbeatTime: metav1.Now(), Reason: "KubeletNotReady"}}
	if _, err := h.admin.CoreV1().Nodes().UpdateStatus(context.Background(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	h.setSpec(specYAML(1))
	eventually(t, 20*time.Second, "the pod to be evicted", func() bool {
		pod, err := h.admin.CoreV1().Pods(h.ns).Get(context.Background(), "slow", metav1.GetOptions{})
		return err == nil && pod.DeletionTimestamp != nil
	})
	eventually(t, 10*time.Second, "status to show the drain waiting for 1 pod", func() bool {
		st := h.status()
		return len(st.Drains) == 1 && st.Drains[0].Machine == victim && st.Drains[0].PodsLeft == 1
	})
	// Passes run every 200ms: ten of them must all leave the machine be.
	consistently(t, 2*time.Second, "the machine to stay while its pod shuts down", func() bool {
		return slices.Contains(h.workers("workers"), victim)
	})
	// The shutdown completes: the machine goes.
	h.mu.Lock()
	h.dead = nil
	h.mu.Unlock()
	eventually(t, 20*time.Second, "the drained worker to be removed", func() bool {
		return !slices.Contains(h.workers("workers"), victim) && len(h.workers("workers")) == 1
	})
}

func TestRemediationHaltIsAnEvent(t *testing.T) {
	h := newHarness(t, specYAML(5))
	h.startAgent("agent-a")
	eventually(t, 20*time.Second, "5 workers", func() bool { return len(h.workers("workers")) == 5 })
	before := h.provider.Calls(fake.MethodDeleteMachine)
	for _, w := range h.workers("workers")[:3] {
		h.killNode(w)
	}
	eventually(t, 10*time.Second, "a RemediationHalted event", func() bool {
		return slices.ContainsFunc(h.events("RemediationHalted"), func(e corev1.Event) bool {
			return strings.Contains(e.Message, "3 of 5 machines unhealthy")
		})
	})
	// The event is sent while planning; the status is written at the end
	// of the same pass.
	eventually(t, 10*time.Second, "RemediationAllowed False", func() bool {
		st := h.status()
		c := st.Condition(v1alpha1.ConditionRemediationAllowed)
		return c != nil && c.Status == "False"
	})
	consistently(t, 2*time.Second, "no deletions", func() bool { return h.provider.Calls(fake.MethodDeleteMachine) == before })
}
