package controller

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/pkg/testenv"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/fake"
)

var shared testenv.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

const selfMachine = "test-control-plane"

// harness is one agent's world: a namespace on a real API server holding
// the manifests the seed installs, a fake provider whose machines "join" by
// registering Ready Nodes, and a kubelet stand-in that finishes pod
// deletions (no kubelet runs in the test environment).
type harness struct {
	t        testing.TB
	env      *testenv.Env
	ns       string
	admin    kubernetes.Interface
	agent    kubernetes.Interface // acts as the agent's ServiceAccount: proves its RBAC
	provider *fake.Provider

	mu         sync.Mutex
	bootstraps []string
	// dead nodes have no kubelet: their pods' deletions never complete.
	dead map[string]bool
}

func newHarness(t testing.TB, spec string) *harness {
	t.Helper()
	env := shared.Env(t)
	ctx := t.Context()
	h := &harness{t: t, env: env, admin: env.Client, provider: fake.New(nil)}
	h.ns = env.Namespace(ctx, t)

	objs, err := manifests.Agent(manifests.Params{Namespace: h.ns, AgentImage: "seed-agent:test", SpecYAML: []byte(spec)})
	if err != nil {
		t.Fatal(err)
	}
	creator, err := kube.NewCreator(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	var keep = objs[:0]
	for _, o := range objs {
		if o.GetKind() != "Namespace" || o.GetName() != h.ns { // the test namespace exists already
			keep = append(keep, o)
		}
	}
	if _, err := creator.CreateMissing(ctx, keep); err != nil {
		t.Fatalf("installing agent manifests: %v", err)
	}
	h.agent, err = kubernetes.NewForConfig(env.ServiceAccountConfig(h.ns, "seed-agent"))
	if err != nil {
		t.Fatal(err)
	}

	// The machine the agent runs on, as the seed leaves it.
	h.provider.Add(providers.Machine{Name: selfMachine + "-" + h.ns, Pool: v1alpha1.ControlPlanePool, Role: providers.RoleControlPlane,
		KubernetesVersion: "v1.34.2", CreatedAt: time.Now().Add(-time.Hour)})
	h.registerNode(selfMachine+"-"+h.ns, v1alpha1.ControlPlanePool, true)
	h.provider.OnCreate = func(m providers.Machine) { h.registerNode(m.Name, m.Pool, true) }
	go h.kubeletStandIn(ctx)
	// Nodes are cluster-scoped: remove this test's, so the next test's agent
	// does not find them.
	t.Cleanup(func() {
		_ = h.admin.CoreV1().Nodes().DeleteCollection(context.Background(), metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: "seed.dev/test-namespace=" + h.ns})
	})
	return h
}

func (h *harness) self() string { return selfMachine + "-" + h.ns }

// registerNode creates a Node as kubeadm join would, Ready or not.
func (h *harness) registerNode(name, pool string, ready bool) {
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		providers.LabelPool: pool, "seed.dev/test-namespace": h.ns}}}
	if pool == v1alpha1.ControlPlanePool {
		// As kubeadm registers it: workloads go elsewhere.
		node.Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
	}
	created, err := h.admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return
	}
	if err != nil {
		h.t.Errorf("registering node %s: %v", name, err)
		return
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	created.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status,
		LastTransitionTime: metav1.Now(), LastHeartbeatTime: metav1.Now(), Reason: "Test"}}
	created.Status.NodeInfo.KubeletVersion = "v1.34.2"
	// What the fake provider says a machine of the empty type offers.
	created.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
	created.Status.Allocatable = created.Status.Capacity
	if _, err := h.admin.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		h.t.Errorf("setting node %s status: %v", name, err)
	}
}

// killNode marks the node NotReady and stops its kubelet stand-in, as when
// the machine stops.
func (h *harness) killNode(name string) {
	h.t.Helper()
	h.mu.Lock()
	if h.dead == nil {
		h.dead = map[string]bool{}
	}
	h.dead[name] = true
	h.mu.Unlock()
	node, err := h.admin.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
		LastTransitionTime: metav1.Now(), LastHeartbeatTime: metav1.Now(), Reason: "NodeStatusUnknown"}}
	if _, err := h.admin.CoreV1().Nodes().UpdateStatus(context.Background(), node, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// kubeletStandIn completes graceful pod deletions, as a kubelet would once
// the containers stop.
func (h *harness) kubeletStandIn(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pods, err := h.admin.CoreV1().Pods(h.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		h.mu.Lock()
		dead := maps.Clone(h.dead)
		h.mu.Unlock()
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil && !dead[p.Spec.NodeName] {
				zero := int64(0)
				_ = h.admin.CoreV1().Pods(h.ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			}
		}
	}
}

// startAgent runs a reconciler (without leader election) until the returned
// stop function is called or the test ends.
func (h *harness) startAgent(identity string, mutate ...func(*Options)) (stop func()) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := h.newReconciler(identity, mutate...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			h.t.Errorf("agent %s: %v", identity, err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	h.t.Cleanup(stop)
	return stop
}

func (h *harness) newReconciler(identity string, mutate ...func(*Options)) *Reconciler {
	h.t.Helper()
	opts := Options{
		Client:    h.agent,
		Provider:  h.provider,
		Namespace: h.ns,
		Self:      h.self(),
		Identity:  identity,
		Bootstrapper: BootstrapperFunc(func(_ context.Context, _ *v1alpha1.Cluster, m providers.MachineSpec) (providers.Bootstrap, error) {
			h.mu.Lock()
			h.bootstraps = append(h.bootstraps, m.Name)
			h.mu.Unlock()
			return providers.Bootstrap{Script: "kubeadm join # " + m.Name}, nil
		}),
		Resync:            time.Second,
		ProgressInterval:  200 * time.Millisecond,
		OrphanGracePeriod: time.Minute,
		Metrics:           NewMetrics(prometheus.NewRegistry()),
		Logger:            testr.NewWithInterface(h.t, testr.Options{Verbosity: 0}).WithName(identity),
	}
	for _, m := range mutate {
		m(&opts)
	}
	r, err := New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// setSpec replaces the spec ConfigMap's content, as `kubectl edit` would.
func (h *harness) setSpec(spec string) {
	h.t.Helper()
	cms := h.admin.CoreV1().ConfigMaps(h.ns)
	cm, err := cms.Get(context.Background(), v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	cm.Data[v1alpha1.SpecKey] = spec
	if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) status() v1alpha1.ClusterStatus {
	cm, err := h.admin.CoreV1().ConfigMaps(h.ns).Get(context.Background(), v1alpha1.StatusConfigMap, metav1.GetOptions{})
	if err != nil {
		return v1alpha1.ClusterStatus{}
	}
	var st v1alpha1.ClusterStatus
	if err := yaml.Unmarshal([]byte(cm.Data[v1alpha1.StatusKey]), &st); err != nil {
		h.t.Errorf("decoding status: %v", err)
	}
	return st
}

// workers returns the names of the provider's machines in pool.
func (h *harness) workers(pool string) []string {
	var names []string
	for _, m := range h.provider.Machines() {
		if m.Pool == pool {
			names = append(names, m.Name)
		}
	}
	return names
}

func (h *harness) events(reason string) []corev1.Event {
	list, err := h.admin.CoreV1().Events(h.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// consistently checks cond holds for the whole duration.
func consistently(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// specYAML renders a docker cluster spec with one pool of n workers.
func specYAML(replicas int, extra ...string) string {
	s := fmt.Sprintf(`apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata:
  name: test
spec:
  kubernetesVersion: v1.34.2
  provider:
    docker: {}
  nodePools:
  - name: workers
    replicas: %d
`, replicas)
	return s + strings.Join(extra, "\n")
}
