package autoscale

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func template(milliCPU int64, memGi int64, lbls map[string]string, taints ...corev1.Taint) Template {
	return Template{Allocatable: Resources{MilliCPU: milliCPU, Memory: memGi * gi, Pods: 110}, Labels: lbls, Taints: taints}
}

func pending(name string, milliCPU int64, mut ...func(*Pod)) *Pod {
	p := &Pod{Namespace: "default", Name: name, Requests: Resources{MilliCPU: milliCPU, Memory: gi / 4, Pods: 1},
		Unschedulable: true, Since: t0.Add(-time.Second), Owner: OwnerOther}
	for _, m := range mut {
		m(p)
	}
	return p
}

func pool(name string, min, max int, t Template, machines ...Machine) Pool {
	return Pool{Name: name, Min: min, Max: max, Template: t, Machines: machines}
}

func settings() Settings {
	return Settings{Threshold: 0.5, UnneededTime: time.Minute, DelayAfterAdd: time.Minute}
}

func verdicts(d Decision) map[string]PodVerdict {
	out := map[string]PodVerdict{}
	for _, v := range d.Pods {
		out[strings.TrimPrefix(v.Pod, "default/")] = v
	}
	return out
}

func TestScaleUpPacksPendingPodsOntoTheFewestMachinesFromZero(t *testing.T) {
	var pods []*Pod
	for i := range 5 {
		pods = append(pods, pending(fmt.Sprintf("web-%d", i), 400))
	}
	d := Decide(Input{Pools: []Pool{pool("workers", 0, 3, template(1000, 2, nil))}, Pending: pods, Settings: settings(), Now: t0})
	// 400m pods on 1-CPU machines: two a machine, three machines for five.
	if got := d.Pools["workers"].Add; got != 3 {
		t.Fatalf("Add = %d, want 3; %+v", got, d.Pools)
	}
	for _, v := range d.Pods {
		if v.Verdict != ScaleUp || v.Pool != "workers" {
			t.Errorf("%s: %s %s, want ScaleUp workers", v.Pod, v.Verdict, v.Pool)
		}
	}
	if tr := d.Pools["workers"].Triggered; !tr.Equal(t0.Add(-time.Second)) {
		t.Errorf("Triggered = %v", tr)
	}
}

func TestScaleUpStopsAtMaxReplicasAndSaysSo(t *testing.T) {
	var pods []*Pod
	for i := range 6 {
		pods = append(pods, pending(fmt.Sprintf("web-%d", i), 400))
	}
	d := Decide(Input{Pools: []Pool{pool("workers", 0, 2, template(1000, 2, nil), Machine{Name: "w1", Ready: true})},
		Nodes:   []*Node{readyNode("w1", "workers", 1000, &Pod{Namespace: "default", Name: "busy", Requests: Resources{MilliCPU: 900, Pods: 1}, Owner: OwnerOther, NodeName: "w1"})},
		Pending: pods, Settings: settings(), Now: t0})
	if got := d.Pools["workers"].Add; got != 1 {
		t.Fatalf("Add = %d, want 1 (max 2, one exists)", got)
	}
	atMax := 0
	for _, v := range d.Pods {
		if v.Verdict == NoPool {
			atMax++
			if len(v.Pools) != 1 || v.Pools[0].Code != AtMax || !strings.Contains(v.Message, "pool workers: at maxReplicas 2") {
				t.Errorf("%s: %+v", v.Pod, v)
			}
		}
	}
	if atMax != 4 {
		t.Errorf("%d pods at max, want 4", atMax)
	}
}

func TestScaleUpRoutesPodsToThePoolTheyTolerateAndSelect(t *testing.T) {
	taint := corev1.Taint{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}
	batch := func(p *Pod) {
		p.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "batch", Effect: corev1.TaintEffectNoSchedule}}
		p.NodeSelector = map[string]string{"role": "batch"}
	}
	in := Input{Pools: []Pool{
		pool("general", 0, 3, template(1000, 2, map[string]string{"role": "general"})),
		pool("batch", 0, 3, template(1000, 2, map[string]string{"role": "batch"}, taint)),
	}, Pending: []*Pod{pending("job-0", 600, batch), pending("job-1", 600, batch), pending("web-0", 600)}, Settings: settings(), Now: t0}
	d := Decide(in)
	if d.Pools["batch"].Add != 2 || d.Pools["general"].Add != 1 {
		t.Fatalf("pools = %+v, want batch +2, general +1", d.Pools)
	}
	v := verdicts(d)
	if v["job-0"].Pool != "batch" || v["web-0"].Pool != "general" {
		t.Errorf("verdicts = %+v", v)
	}
}

func TestAPodNoPoolCanTakeCreatesNothingAndGetsEveryPoolsReason(t *testing.T) {
	taint := corev1.Taint{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}
	d := Decide(Input{Pools: []Pool{
		pool("general", 0, 3, template(1000, 2, nil)),
		pool("batch", 0, 3, template(4000, 8, nil, taint)),
		{Name: "mystery", Max: 3, TemplateErr: "machine type m9.huge is unknown to the provider"},
	}, Pending: []*Pod{pending("huge", 3000)}, Settings: settings(), Now: t0})
	if len(d.Pools) != 0 {
		t.Fatalf("pools = %+v, want no change", d.Pools)
	}
	v := verdicts(d)["huge"]
	if v.Verdict != NoPool || len(v.Pools) != 3 {
		t.Fatalf("verdict = %+v", v)
	}
	want := map[string]string{"general": string(InsufficientResources), "batch": string(TaintNotTolerated), "mystery": TemplateUnknown}
	for _, r := range v.Pools {
		if r.Code != want[r.Pool] {
			t.Errorf("pool %s: %s (%s), want %s", r.Pool, r.Code, r.Message, want[r.Pool])
		}
	}
	if !strings.Contains(v.Message, "pool general: larger than a new machine of the pool") {
		t.Errorf("message = %q", v.Message)
	}
}

func TestDaemonSetPodsTakeTheirShareOfEveryNewMachine(t *testing.T) {
	ds := &Pod{Namespace: "kube-system", Name: "agent", Requests: Resources{MilliCPU: 300, Memory: gi / 8, Pods: 1}, Owner: OwnerDaemonSet}
	pods := []*Pod{pending("a", 400), pending("b", 400)}
	d := Decide(Input{Pools: []Pool{pool("workers", 0, 3, template(1000, 2, nil))}, Pending: pods, DaemonSets: []*Pod{ds}, Settings: settings(), Now: t0})
	// 300m + 400m + 400m does not fit in 1 CPU: two machines.
	if got := d.Pools["workers"].Add; got != 2 {
		t.Fatalf("Add = %d, want 2", got)
	}
}

func TestPodsThatFitMachinesOnTheirWayOrRoomThatExistsCreateNothing(t *testing.T) {
	d := Decide(Input{
		Pools:   []Pool{pool("workers", 0, 3, template(1000, 2, nil), Machine{Name: "w1", Ready: true}, Machine{Name: "w2"})},
		Nodes:   []*Node{readyNode("w1", "workers", 1000)},
		Pending: []*Pod{pending("a", 600), pending("b", 600)}, Settings: settings(), Now: t0})
	if len(d.Pools) != 0 {
		t.Fatalf("pools = %+v, want no change", d.Pools)
	}
	v := verdicts(d)
	if v["a"].Verdict != FitsExisting || v["b"].Verdict != WaitsForMachine || v["b"].Node != "w2" {
		t.Errorf("verdicts = %+v", v)
	}
}

func TestPodsWithConstraintsNotSimulatedAreSaidSoAndCreateNothing(t *testing.T) {
	d := Decide(Input{Pools: []Pool{pool("workers", 0, 3, template(1000, 2, nil))},
		Pending:  []*Pod{pending("spread", 100, func(p *Pod) { p.NotSimulated = "topology spread constraint (DoNotSchedule)" })},
		Settings: settings(), Now: t0})
	v := verdicts(d)["spread"]
	if len(d.Pools) != 0 || v.Verdict != NotSimulatedPod || !strings.Contains(v.Message, "topology spread") {
		t.Fatalf("pools %+v, verdict %+v", d.Pools, v)
	}
}

func readyNode(name, pool string, milliCPU int64, pods ...*Pod) *Node {
	for _, p := range pods {
		p.NodeName = name
	}
	return &Node{Name: name, Pool: pool, Ready: true, Allocatable: Resources{MilliCPU: milliCPU, Memory: 2 * gi, Pods: 110}, Pods: pods}
}

func bound(name string, milliCPU int64, mut ...func(*Pod)) *Pod {
	p := &Pod{Namespace: "default", Name: name, Requests: Resources{MilliCPU: milliCPU, Memory: gi / 8, Pods: 1}, Owner: OwnerOther,
		Labels: map[string]string{"app": "web"}}
	for _, m := range mut {
		m(p)
	}
	return p
}

// scaleDownInput: two Ready workers, w1 nearly idle, w2 with room for
// w1's pod.
func scaleDownInput(w1Pods ...*Pod) Input {
	old := t0.Add(-time.Hour)
	return Input{
		Pools: []Pool{pool("workers", 1, 3, template(1000, 2, nil),
			Machine{Name: "w1", Ready: true, CreatedAt: old}, Machine{Name: "w2", Ready: true, CreatedAt: old})},
		Nodes:    []*Node{readyNode("w1", "workers", 1000, w1Pods...), readyNode("w2", "workers", 1000, bound("x", 300))},
		Settings: settings(), Now: t0,
	}
}

func nodeVerdict(d Decision, name string) NodeVerdict {
	for _, v := range d.Nodes {
		if v.Node == name {
			return v
		}
	}
	return NodeVerdict{}
}

func TestAnUnneededNodeIsRemovedOnlyAfterItsUnneededTime(t *testing.T) {
	in := scaleDownInput(bound("a", 200))
	d := Decide(in)
	if v := nodeVerdict(d, "w1"); v.State != Unneeded || !d.Unneeded["w1"].Equal(t0) || len(d.Pools["workers"].Remove) != 0 {
		t.Fatalf("first look: %+v, timers %v, pools %+v", v, d.Unneeded, d.Pools)
	}
	if !d.NextCheck.Equal(t0.Add(time.Minute)) {
		t.Errorf("NextCheck = %v, want the deadline", d.NextCheck)
	}
	// The timer, kept by the caller (across a restart), runs out.
	in.Unneeded = d.Unneeded
	in.Now = t0.Add(time.Minute)
	d = Decide(in)
	rm := d.Pools["workers"].Remove
	if len(rm) != 1 || rm[0].Machine != "w1" || nodeVerdict(d, "w1").State != Removing {
		t.Fatalf("after unneededTime: pools %+v, nodes %+v", d.Pools, d.Nodes)
	}
	if v := nodeVerdict(d, "w2"); v.State != Kept || v.Blocker != "MinReplicas" {
		t.Errorf("w2 = %+v, want kept at minReplicas", v)
	}
}

func TestNodesWhosePodsCannotLeaveAreKeptAndSayWhy(t *testing.T) {
	no := false
	cases := []struct {
		name    string
		pod     *Pod
		pdbs    []PDB
		blocker string
	}{
		{"no controller", bound("bare", 100, func(p *Pod) { p.Owner = OwnerNone }), nil, "NoController"},
		{"local storage", bound("cache", 100, func(p *Pod) { p.LocalStorage = "scratch" }), nil, "LocalStorage"},
		{"safe-to-evict false", bound("pinned", 100, func(p *Pod) { p.SafeToEvict = &no }), nil, "NotSafeToEvict"},
		{"budget allows none", bound("a", 100), []PDB{{Namespace: "default", Name: "web", Selector: labels.SelectorFromSet(labels.Set{"app": "web"})}}, "PodDisruptionBudget"},
		{"no room elsewhere", bound("big", 800), nil, "NoPlaceToMove"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := scaleDownInput(tc.pod)
			in.Nodes[0].Allocatable.MilliCPU = 4000 // low utilization however big the pod
			in.PDBs = tc.pdbs
			d := Decide(in)
			v := nodeVerdict(d, "w1")
			if v.State != Kept || v.Blocker != tc.blocker || v.Message == "" {
				t.Fatalf("w1 = %+v, want kept by %s", v, tc.blocker)
			}
			if _, ok := d.Unneeded["w1"]; ok {
				t.Errorf("a kept node's timer runs: %v", d.Unneeded)
			}
		})
	}
}

func TestNoScaleDownWhileAPoolGrowsOrRightAfterItGrew(t *testing.T) {
	in := scaleDownInput(bound("a", 100))
	in.Unneeded = map[string]time.Time{"w1": t0.Add(-time.Hour)}
	in.Pending = []*Pod{pending("new", 950)}
	d := Decide(in)
	if v := nodeVerdict(d, "w1"); v.Blocker != "ScaleUpUnderWay" || len(d.Pools["workers"].Remove) != 0 {
		t.Fatalf("during scale-up: %+v %+v", v, d.Pools)
	}

	in = scaleDownInput(bound("a", 100))
	in.Unneeded = map[string]time.Time{"w1": t0.Add(-time.Hour)}
	in.Pools[0].Machines[1].CreatedAt = t0.Add(-10 * time.Second)
	d = Decide(in)
	if v := nodeVerdict(d, "w1"); v.Blocker != "RecentScaleUp" || !d.NextCheck.Equal(t0.Add(50*time.Second)) {
		t.Fatalf("right after a scale-up: %+v, next %v", v, d.NextCheck)
	}
}

func TestBusyNodesGoOneAtATimeAndNotWhileAnotherDrains(t *testing.T) {
	in := scaleDownInput(bound("a", 100))
	in.Unneeded = map[string]time.Time{"w1": t0.Add(-time.Hour)}
	in.Draining = []string{"w9"}
	d := Decide(in)
	if v := nodeVerdict(d, "w1"); v.Blocker != "AnotherDrain" {
		t.Fatalf("w1 = %+v", v)
	}
}

func TestANodeThatPendingPodsFitOnIsNeededHoweverIdle(t *testing.T) {
	in := scaleDownInput()
	in.Unneeded = map[string]time.Time{"w1": t0.Add(-time.Hour)}
	in.Pending = []*Pod{pending("soon", 600)}
	d := Decide(in)
	if v := nodeVerdict(d, "w1"); v.State != Needed || len(d.Pools["workers"].Remove) != 0 {
		t.Fatalf("w1 = %+v, pools %+v", v, d.Pools)
	}
}
