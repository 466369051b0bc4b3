package parity

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	resourcehelper "k8s.io/component-helpers/resource"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeaffinity"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeports"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/noderesources"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeunschedulable"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/tainttoleration"
	"k8s.io/utils/ptr"

	"github.com/seedhq/seed/pkg/autoscale"
)

// pairs is how many random (pod, node) pairs the test checks.
const pairs = 20000

// plugin is one of the scheduler's filter plugins with the Misfit code it
// corresponds to. NodeAffinity covers two codes.
type plugin struct {
	framework.FilterPlugin
	codes []autoscale.ReasonCode
}

// filters builds the plugins Check restates, under the default feature
// gates and the default plugin arguments, in the default profile's order.
func filters(t *testing.T) []plugin {
	ctx := context.Background()
	fts := feature.NewSchedulerFeaturesFromGates(utilfeature.DefaultFeatureGate)
	must := func(p framework.Plugin, err error) framework.FilterPlugin {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p.(framework.FilterPlugin)
	}
	fitArgs := &config.NodeResourcesFitArgs{ScoringStrategy: &config.ScoringStrategy{
		Type:      config.LeastAllocated,
		Resources: []config.ResourceSpec{{Name: "cpu", Weight: 1}, {Name: "memory", Weight: 1}},
	}}
	return []plugin{
		{must(nodeunschedulable.New(ctx, nil, nil, fts)), []autoscale.ReasonCode{autoscale.NodeUnschedulable}},
		{must(tainttoleration.New(ctx, nil, nil, fts)), []autoscale.ReasonCode{autoscale.TaintNotTolerated}},
		{must(nodeaffinity.New(ctx, &config.NodeAffinityArgs{}, nil, fts)), []autoscale.ReasonCode{autoscale.NodeSelectorMismatch, autoscale.NodeAffinityMismatch}},
		{must(nodeports.New(ctx, nil, nil, fts)), []autoscale.ReasonCode{autoscale.HostPortConflict}},
		{must(noderesources.NewFit(ctx, fitArgs, nil, fts)), []autoscale.ReasonCode{autoscale.InsufficientResources}},
	}
}

// failure is a plugin that rejected the node, and what it said.
type failure struct {
	*plugin
	message string
}

// schedule runs the plugins as the scheduling framework runs them for one
// node: every PreFilter first, then the Filter of each plugin whose
// PreFilter did not say Skip. Unlike the framework it does not stop at
// the first rejection: it returns every plugin that rejects the node, in
// plugin order, so that the reason Check reports can be held to its own
// documented order. A PreFilter that rejects, or that narrows the nodes to
// a set without this one, counts as its plugin rejecting.
func schedule(ctx context.Context, plugins []plugin, pod *corev1.Pod, node *corev1.Node, existing []*corev1.Pod) []failure {
	ni := framework.NewNodeInfo(existing...)
	ni.SetNode(node)
	state := framework.NewCycleState()
	done := map[int]bool{}
	failed := map[int]string{}
	for i := range plugins {
		pf, ok := plugins[i].FilterPlugin.(framework.PreFilterPlugin)
		if !ok {
			continue
		}
		res, st := pf.PreFilter(ctx, state, pod, []fwk.NodeInfo{ni})
		switch {
		case st.IsSkip():
			done[i] = true
		case !st.IsSuccess():
			done[i], failed[i] = true, "PreFilter: "+st.Message()
		case !res.AllNodes() && !res.NodeNames.Has(node.Name):
			failed[i] = "PreFilter: node not in " + fmt.Sprint(sets.List(res.NodeNames))
		}
	}
	var out []failure
	for i := range plugins {
		if !done[i] {
			if st := plugins[i].Filter(ctx, state, pod, ni); !st.IsSuccess() && failed[i] == "" {
				failed[i] = st.Message()
			}
		}
		if msg, ok := failed[i]; ok {
			out = append(out, failure{&plugins[i], msg})
		}
	}
	return out
}

// codeFor is the Misfit code Check should give for a rejection by f:
// NodeAffinity's covers both the nodeSelector and the required affinity,
// and the nodeSelector is matched first.
func codeFor(f failure, pod *corev1.Pod, node *corev1.Node) autoscale.ReasonCode {
	if len(f.codes) == 1 {
		return f.codes[0]
	}
	if !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return autoscale.NodeSelectorMismatch
	}
	return autoscale.NodeAffinityMismatch
}

func TestCheckAgreesWithKubeScheduler(t *testing.T) {
	ctx := context.Background()
	plugins := filters(t)
	g := gen{rand.New(rand.NewPCG(20261203, 1))}
	counts := map[autoscale.ReasonCode]int{}
	fitDisagree, codeDisagree, several := 0, 0, 0
	for i := range pairs {
		node, existing := g.node(i)
		pod := g.pod("pending", g.r.IntN(2) == 0)
		g.edge(node, pod, existing)

		compactPods := make([]*autoscale.Pod, len(existing))
		for j, p := range existing {
			compactPods[j] = autoscale.PodOf(p)
		}
		compact := autoscale.PodOf(pod)
		got := autoscale.Check(compact, autoscale.BinOf(autoscale.NodeOf(node, compactPods)))
		counts[got.Code]++
		// The informer's trimmed pods must give the same records.
		if trimmed := autoscale.PodOf(autoscale.TrimPodForAutoscaling(pod)); !reflect.DeepEqual(trimmed, compact) {
			t.Fatalf("pair %d: PodOf(TrimPodForAutoscaling(pod)) = %+v, PodOf(pod) = %+v", i, trimmed, compact)
		}

		failures := schedule(ctx, plugins, pod, node, existing)
		if len(failures) > 1 {
			several++
		}
		var want autoscale.ReasonCode
		if len(failures) > 0 {
			want = codeFor(failures[0], pod, node)
		}
		if (want == autoscale.Fits) != (got.Code == autoscale.Fits) {
			fitDisagree++
		} else if want != got.Code {
			codeDisagree++
		} else {
			continue
		}
		if fitDisagree+codeDisagree <= 5 {
			var said []string
			for _, f := range failures {
				said = append(said, f.Name()+": "+f.message)
			}
			t.Errorf("pair %d: Check = %+v, want code %q; the scheduler's plugins said %q\npod %s\nnode %s\nexisting %d pods",
				i, got, want, said, dump(pod), dump(node), len(existing))
		}
	}
	t.Logf("%d pairs: fits or not agree on %d (%.2f%%), the reason on %d (%.2f%%); %d pairs failed several plugins; Check's verdicts: %v",
		pairs, pairs-fitDisagree, pct(pairs-fitDisagree), pairs-fitDisagree-codeDisagree, pct(pairs-fitDisagree-codeDisagree), several, counts)
	if fitDisagree+codeDisagree > 0 {
		t.Errorf("%d pairs disagree on fitting, %d more on the reason", fitDisagree, codeDisagree)
	}
	// A generator that stopped reaching some verdict would make agreement
	// hollow.
	for _, code := range []autoscale.ReasonCode{autoscale.Fits, autoscale.NodeUnschedulable, autoscale.TaintNotTolerated,
		autoscale.NodeSelectorMismatch, autoscale.NodeAffinityMismatch, autoscale.HostPortConflict, autoscale.InsufficientResources} {
		if counts[code] < pairs/100 {
			t.Errorf("only %d pairs gave %q: the generator needs rebalancing", counts[code], code)
		}
	}
}

func pct(n int) float64 { return 100 * float64(n) / pairs }

func dump(v any) string { return fmt.Sprintf("%+v", v) }

// gen draws pods and nodes from a small universe of keys, values, ports and
// amounts, so that matches, near misses and conflicts are all common.
type gen struct{ r *rand.Rand }

var (
	labelKeys   = []string{"zone", "disktype", "team", "cores"}
	labelValues = map[string][]string{"zone": {"a", "b", "c"}, "disktype": {"ssd", "hdd"}, "team": {"web", "db"}, "cores": {"2", "4", "8", "16"}}
	taintKeys   = []string{"dedicated", "gpu", "spot", corev1.TaintNodeUnschedulable}
	taintValues = []string{"", "a", "b"}
	effects     = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute, corev1.TaintEffectPreferNoSchedule}
	nodeNames   = []string{"n1", "n2", "n3"}
	ports       = []int32{80, 443, 8080}
	protocols   = []corev1.Protocol{"", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
	hostIPs     = []string{"", "0.0.0.0", "10.0.0.1", "10.0.0.2"}
	scalars     = []corev1.ResourceName{"example.com/gpu", "hugepages-2Mi"}
	selectorOps = []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
		corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (g gen) chance(percent int) bool { return g.r.IntN(100) < percent }

func (g gen) node(i int) (*corev1.Node, []*corev1.Pod) {
	name := pick(g.r, nodeNames)
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "seed.dev/pool": "workers"}},
		Spec:       corev1.NodeSpec{Unschedulable: g.chance(10)},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:              *resource.NewMilliQuantity(int64(1000+g.r.IntN(7000)), resource.DecimalSI),
				corev1.ResourceMemory:           *resource.NewQuantity(int64(1+g.r.IntN(16))<<30, resource.BinarySI),
				corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(10+g.r.IntN(90))<<30, resource.BinarySI),
				corev1.ResourcePods:             *resource.NewQuantity(int64(2+g.r.IntN(12)), resource.DecimalSI),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, k := range labelKeys {
		if g.chance(60) {
			n.Labels[k] = pick(g.r, labelValues[k])
		}
	}
	for _, s := range scalars {
		if g.chance(40) {
			n.Status.Allocatable[s] = *resource.NewQuantity(int64(g.r.IntN(4))<<sizeShift(s), resource.BinarySI)
		}
	}
	for range max(0, g.r.IntN(5)-2) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: pick(g.r, taintKeys), Value: pick(g.r, taintValues), Effect: pick(g.r, effects)})
	}
	var existing []*corev1.Pod
	for j := range g.r.IntN(6) {
		p := g.pod(fmt.Sprintf("existing-%d-%d", i, j), false)
		p.Spec.NodeName = name
		existing = append(existing, p)
	}
	return n, existing
}

// edge sometimes sets the node's allocatable cpu or memory to exactly what
// its pods and pod need, or one unit less, where an off-by-one or a
// rounding difference would show.
func (g gen) edge(node *corev1.Node, pod *corev1.Pod, existing []*corev1.Pod) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if !g.chance(10) {
			continue
		}
		total := int64(0)
		for _, p := range append([]*corev1.Pod{pod}, existing...) {
			q := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})[name]
			if name == corev1.ResourceCPU {
				total += q.MilliValue()
			} else {
				total += q.Value()
			}
		}
		total -= int64(g.r.IntN(2))
		if name == corev1.ResourceCPU {
			node.Status.Allocatable[name] = *resource.NewMilliQuantity(total, resource.DecimalSI)
		} else {
			node.Status.Allocatable[name] = *resource.NewQuantity(total, resource.BinarySI)
		}
	}
}

// sizeShift makes hugepages come in 2Mi pages and devices in units.
func sizeShift(s corev1.ResourceName) int {
	if s == "hugepages-2Mi" {
		return 21
	}
	return 0
}

func (g gen) requests() corev1.ResourceList {
	rl := corev1.ResourceList{}
	if g.chance(80) {
		// Some amounts are not whole millicores or bytes, so rounding up
		// is exercised as well.
		if g.chance(10) {
			rl[corev1.ResourceCPU] = resource.MustParse(pick(g.r, []string{"0.0005", "1.0001", "100u"}))
		} else {
			rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(g.r.IntN(1500)), resource.DecimalSI)
		}
	}
	if g.chance(80) {
		rl[corev1.ResourceMemory] = *resource.NewQuantity(int64(g.r.IntN(2048))<<20, resource.BinarySI)
	}
	if g.chance(20) {
		rl[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(g.r.IntN(40))<<30, resource.BinarySI)
	}
	for _, s := range scalars {
		if g.chance(10) {
			rl[s] = *resource.NewQuantity(int64(g.r.IntN(3))<<sizeShift(s), resource.BinarySI)
		}
	}
	return rl
}

func (g gen) containerPorts() []corev1.ContainerPort {
	var out []corev1.ContainerPort
	if g.chance(30) {
		out = append(out, corev1.ContainerPort{ContainerPort: 1, HostPort: pick(g.r, ports), Protocol: pick(g.r, protocols), HostIP: pick(g.r, hostIPs)})
	}
	return out
}

// pod draws a pod; scheduling constraints only when constrained, since
// the pods already on a node matter only by their requests and ports.
func (g gen) pod(name string, constrained bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)}}
	for i := range 1 + g.r.IntN(3) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
			Name: fmt.Sprintf("c%d", i), Resources: corev1.ResourceRequirements{Requests: g.requests()}, Ports: g.containerPorts(),
		})
	}
	for i := range g.r.IntN(3) {
		c := corev1.Container{Name: fmt.Sprintf("init%d", i), Resources: corev1.ResourceRequirements{Requests: g.requests()}, Ports: g.containerPorts()}
		if g.chance(40) {
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
	if g.chance(15) {
		p.Spec.Overhead = corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(g.r.IntN(300)), resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(int64(g.r.IntN(256))<<20, resource.BinarySI),
		}
	}
	if g.chance(10) {
		p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: *resource.NewMilliQuantity(int64(g.r.IntN(4000)), resource.DecimalSI),
		}}
	}
	if !constrained {
		return p
	}
	for range g.r.IntN(3) {
		tol := corev1.Toleration{
			Key:      pick(g.r, append([]string{""}, taintKeys...)),
			Operator: pick(g.r, []corev1.TolerationOperator{"", corev1.TolerationOpEqual, corev1.TolerationOpExists}),
			Value:    pick(g.r, taintValues),
			Effect:   pick(g.r, append([]corev1.TaintEffect{""}, effects...)),
		}
		p.Spec.Tolerations = append(p.Spec.Tolerations, tol)
	}
	if g.chance(30) {
		p.Spec.NodeSelector = map[string]string{}
		for range 1 + g.r.IntN(2) {
			k := pick(g.r, labelKeys)
			p.Spec.NodeSelector[k] = pick(g.r, labelValues[k])
		}
	}
	if g.chance(40) {
		ns := &corev1.NodeSelector{}
		for range 1 + g.r.IntN(3) {
			ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, g.term())
		}
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: ns}}
	}
	return p
}

func (g gen) term() corev1.NodeSelectorTerm {
	var t corev1.NodeSelectorTerm
	for range g.r.IntN(3) {
		k := pick(g.r, labelKeys)
		op := pick(g.r, selectorOps)
		req := corev1.NodeSelectorRequirement{Key: k, Operator: op}
		switch op {
		case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
			for range 1 + g.r.IntN(2) {
				req.Values = append(req.Values, pick(g.r, labelValues[k]))
			}
		case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
			// Against a non-numeric label the requirement fails to match;
			// a non-numeric value fails to parse, making the term void.
			req.Values = []string{pick(g.r, []string{"1", "4", "8", "x"})}
		}
		t.MatchExpressions = append(t.MatchExpressions, req)
	}
	if g.chance(30) {
		op := pick(g.r, []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn})
		t.MatchFields = append(t.MatchFields, corev1.NodeSelectorRequirement{Key: "metadata.name", Operator: op, Values: []string{pick(g.r, nodeNames)}})
	}
	return t
}
