package simulated

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/pkg/testenv"
	"github.com/seedhq/seed/providers"
)

var shared testenv.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// newProvider returns a provider of a cluster of its own (Nodes are
// cluster-scoped; the name keeps tests apart) on the shared API server.
func newProvider(t *testing.T, cluster string, delay time.Duration, clk *clocktesting.FakeClock) providers.Provider {
	t.Helper()
	env := shared.Env(t)
	p, err := New(Options{ClusterName: cluster, Config: env.Config, RegistrationDelay: delay, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.DestroyInfrastructure(context.Background()) })
	return p
}

// join renders the bootstrap the agent's joiner would for a worker of a
// pool with labels and taints.
func join(t *testing.T, name string) providers.Bootstrap {
	t.Helper()
	b, err := bootstrap.Join(bootstrap.Cluster{Name: "c", KubernetesVersion: "v1.34.2", ControlPlaneEndpoint: "10.0.0.1:6443"},
		bootstrap.Machine{Name: name, Labels: map[string]string{providers.LabelPool: "web", "tier": "web"},
			Taints: []v1alpha1.Taint{{Key: "dedicated", Value: "web", Effect: "NoSchedule"}}},
		"abcdef.0123456789abcdef", []string{"sha256:0000000000000000000000000000000000000000000000000000000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// node reads a Node, without the not-ready taint the API server's
// TaintNodesByCondition admission adds to every new Node.
func node(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := shared.Env(t).Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady })
	return n
}

func TestAMachineIsANodeRegisteredAsItsJoinSays(t *testing.T) {
	ctx := t.Context()
	p := newProvider(t, "sim-join", 0, clocktesting.NewFakeClock(time.Now()))
	name := "sim-join-web-abcde"
	m, err := p.CreateMachine(ctx, providers.MachineSpec{Name: name, Pool: "web", Role: providers.RoleWorker,
		MachineType: "sim-4x16", KubernetesVersion: "v1.34.2", Bootstrap: join(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	if m.Phase != providers.PhaseRunning || m.ProviderID != "kwok://"+name || m.Pool != "web" || m.MachineType != "sim-4x16" {
		t.Errorf("machine = %+v, want a Running sim-4x16 of pool web with providerID kwok://%s", m, name)
	}
	n := node(t, name)
	for k, v := range map[string]string{"tier": "web", providers.LabelPool: "web", providers.LabelCluster: "sim-join",
		KwokNodeKey: KwokNodeValue, corev1.LabelInstanceTypeStable: "sim-4x16", corev1.LabelHostname: name} {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	if n.Annotations[KwokNodeKey] != KwokNodeValue {
		t.Errorf("no kwok annotation with no registration delay: %v", n.Annotations)
	}
	if want := []corev1.Taint{{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}}; !slices.EqualFunc(n.Spec.Taints, want,
		func(a, b corev1.Taint) bool { return a.MatchTaint(&b) && a.Value == b.Value }) {
		t.Errorf("taints = %v, want %v", n.Spec.Taints, want)
	}
	if n.Spec.ProviderID != "kwok://"+name {
		t.Errorf("providerID = %q", n.Spec.ProviderID)
	}
	if cpu, mem := n.Status.Capacity.Cpu().Value(), n.Status.Capacity.Memory().Value(); cpu != 4 || mem != 16<<30 {
		t.Errorf("capacity = %d CPUs, %d bytes; want 4 and 16Gi (the API server keeps status on create)", cpu, mem)
	}
	if n.Status.NodeInfo.KubeletVersion != "v1.34.2" {
		t.Errorf("kubeletVersion = %q", n.Status.NodeInfo.KubeletVersion)
	}
	want, err := p.MachineTypeResources(ctx, "sim-4x16")
	if err != nil {
		t.Fatal(err)
	}
	a := n.Status.Allocatable
	if got := (providers.MachineResources{MilliCPU: a.Cpu().MilliValue(), Memory: a.Memory().Value(), Pods: a.Pods().Value()}); got != want {
		t.Errorf("the Node's allocatable = %+v, MachineTypeResources says %+v", got, want)
	}
}

func TestCreatingAndDeletingTwiceMakesOneMachineAndRemovesIt(t *testing.T) {
	ctx := t.Context()
	p := newProvider(t, "sim-twice", 0, clocktesting.NewFakeClock(time.Now()))
	other := newProvider(t, "sim-twice", 0, clocktesting.NewFakeClock(time.Now()))
	specs := []providers.MachineSpec{{Name: "sim-twice-a", Pool: "a"}, {Name: "sim-twice-b", Pool: "a"}}
	// Two agents overlapping: both ask for the same machines at once.
	var wg sync.WaitGroup
	for _, q := range []providers.Provider{p, other, p} {
		wg.Go(func() {
			if _, err := q.CreateMachines(ctx, specs); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, err := p.ListMachines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("listed %d machines, want 2: %+v", len(list), list)
	}
	for range 2 {
		if err := other.DeleteMachine(ctx, "sim-twice-a"); err != nil {
			t.Fatalf("deleting (a missing machine is success): %v", err)
		}
	}
	if list, _ = p.ListMachines(ctx); len(list) != 1 || list[0].Name != "sim-twice-b" {
		t.Errorf("after deleting a, listed %+v", list)
	}
}

func TestANodeOfAnotherClusterIsNoMachineOfThisOne(t *testing.T) {
	ctx := t.Context()
	mine := newProvider(t, "sim-mine", 0, clocktesting.NewFakeClock(time.Now()))
	theirs := newProvider(t, "sim-theirs", 0, clocktesting.NewFakeClock(time.Now()))
	if _, err := theirs.CreateMachine(ctx, providers.MachineSpec{Name: "sim-shared-name", Pool: "a"}); err != nil {
		t.Fatal(err)
	}
	_, err := mine.CreateMachine(ctx, providers.MachineSpec{Name: "sim-shared-name", Pool: "a"})
	if !providers.IsInvalid(err) {
		t.Errorf("creating a name another cluster's Node has: %v, want an Invalid error", err)
	}
	if list, _ := mine.ListMachines(ctx); len(list) != 0 {
		t.Errorf("listed another cluster's machines: %+v", list)
	}
}

// A machine is Pending until its registration time, which its Node
// carries for kwok to wait for: any agent reading it later, the creator
// dead or not, sees the same.
func TestAMachineIsPendingUntilItsRegistrationTime(t *testing.T) {
	ctx := t.Context()
	start := time.Now()
	clk := clocktesting.NewFakeClock(start)
	creator := newProvider(t, "sim-delay", time.Minute, clk)
	name := "sim-delay-web-abcde"
	m, err := creator.CreateMachine(ctx, providers.MachineSpec{Name: name, Pool: "web", Bootstrap: join(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	if m.Phase != providers.PhasePending {
		t.Errorf("phase before the delay = %s, want Pending", m.Phase)
	}
	n := node(t, name)
	at, err := time.Parse(time.RFC3339Nano, n.Annotations[AnnotationRegisterAt])
	if err != nil || !at.Equal(start.Add(time.Minute)) {
		t.Errorf("%s = %q, want %s", AnnotationRegisterAt, n.Annotations[AnnotationRegisterAt], start.Add(time.Minute).UTC().Format(time.RFC3339Nano))
	}
	if n.Annotations[KwokNodeKey] != KwokNodeValue {
		t.Error("no kwok annotation: kwok would never manage the Node")
	}

	later := newProvider(t, "sim-delay", time.Minute, clocktesting.NewFakeClock(start.Add(2*time.Minute)))
	list, err := later.ListMachines(ctx)
	if err != nil || len(list) != 1 || list[0].Phase != providers.PhaseRunning {
		t.Errorf("another agent's listing after the delay: %v, %+v; want the machine Running", err, list)
	}
}

func TestUnknownMachineTypesAreRejected(t *testing.T) {
	p := newProvider(t, "sim-types", 0, clocktesting.NewFakeClock(time.Now()))
	_, err := p.CreateMachine(t.Context(), providers.MachineSpec{Name: "sim-types-a", Pool: "a", MachineType: "m5.large"})
	if !providers.IsInvalid(err) {
		t.Errorf("creating an m5.large: %v, want an Invalid error", err)
	}
}

// What a type offers is known without an API server: the provider is
// built by hand, New needing one.
func TestMachineTypeResourcesAreTheSimulatedNodesAllocatable(t *testing.T) {
	p := &provider{}
	for _, tt := range []struct {
		machineType string
		want        providers.MachineResources
	}{
		{"sim-2x8", providers.MachineResources{MilliCPU: 2000, Memory: 8 << 30, Pods: 110}},
		{"", providers.MachineResources{MilliCPU: 8000, Memory: 32 << 30, Pods: 110}},
	} {
		if got, err := p.MachineTypeResources(t.Context(), tt.machineType); err != nil || got != tt.want {
			t.Errorf("MachineTypeResources(%q) = %+v, %v; want %+v", tt.machineType, got, err, tt.want)
		}
	}
	if _, err := p.MachineTypeResources(t.Context(), "m5.large"); !providers.IsInvalid(err) || !strings.Contains(err.Error(), `"m5.large"`) {
		t.Errorf("MachineTypeResources(m5.large) = %v, want Invalid naming the type", err)
	}
}
