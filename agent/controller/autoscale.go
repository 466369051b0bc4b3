package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/seedhq/seed/agent/drain"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/autoscale"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

// UnneededSinceAnnotation is on a Node of an autoscaled pool while the
// autoscaler finds it unneeded: since when (RFC 3339). Kept on the Node,
// the timer survives agent restarts and changes of leader.
const UnneededSinceAnnotation = "seed.dev/unneeded-since"

// pendingIndex indexes the pod cache's unbound, unfinished pods.
const pendingIndex = "pending"

// scaleUpBatch is how long after a pod is found unschedulable the pass
// that decides on it runs: pods created together (a Deployment's
// replicas) are seen by the scheduler within it, and decided on together.
const scaleUpBatch = 500 * time.Millisecond

// autoscaler is the agent's side of pkg/autoscale: the caches it reads
// and what it remembers between passes.
type autoscaler struct {
	pods       cache.Indexer
	daemonSets appslisters.DaemonSetLister
	budgets    policylisters.PodDisruptionBudgetLister
	// podEvents records Events on pods, in their own namespaces.
	podEvents record.EventRecorder
	// told is the verdict last told in an Event, by pod.
	told map[string]string
	// triggered is, for each machine created for pending pods, when the
	// first of them was found unschedulable (for the latency metric).
	triggered map[string]time.Time
	// types caches what the provider says each machine type offers.
	types map[string]providers.MachineResources
}

// podCache turns the pods the informer receives into the compact records
// its cache keeps (the drainer and the autoscaler read nothing else): at
// 30 pods a node, a Pod even trimmed to these fields costs over 4 KiB in
// the cache, its record a few hundred bytes.
type podCache struct{ interner autoscale.Interner }

func (c *podCache) transform(obj any) (any, error) {
	if p, ok := obj.(*corev1.Pod); ok {
		return c.interner.PodOf(p), nil
	}
	return obj, nil // a record already, or a tombstone of one
}

func podIndexers() cache.Indexers {
	ix := drain.Indexers()
	ix[pendingIndex] = func(obj any) ([]string, error) {
		if p, ok := obj.(*autoscale.Pod); ok && p.NodeName == "" && !p.Finished {
			return []string{"pending"}, nil
		}
		return nil, nil
	}
	return ix
}

// onPodChange wakes the reconciler shortly after a pod is found
// unschedulable: the scale-up path does not wait for a resync.
func (r *Reconciler) onPodChange(oldObj, newObj any) {
	p, ok := newObj.(*autoscale.Pod)
	if !ok || !unschedulable(p) {
		return
	}
	if old, ok := oldObj.(*autoscale.Pod); ok && unschedulable(old) {
		return
	}
	r.wake(wakePod, scaleUpBatch)
}

func unschedulable(p *autoscale.Pod) bool { return p.NodeName == "" && p.Unschedulable }

// autoscalePhase decides, for every autoscaled pool, how it changes, and
// keeps the unneeded timers on the Nodes. The decision goes to the
// planner, which alone turns it into actions.
func (r *Reconciler) autoscalePhase(ctx context.Context, ps *pass) map[string]plan.AutoscaledPool {
	a := r.auto
	if a == nil || !ps.spec.Spec.AnyAutoscaled() {
		ps.autoscale = nil
		return nil
	}
	in := autoscale.Input{Now: ps.now, Self: r.opts.Self, Settings: autoscaleSettings(&ps.spec.Spec), Unneeded: map[string]time.Time{}}

	nodes := map[string]*autoscale.Node{}
	for _, n := range ps.nodes {
		var pods []*autoscale.Pod
		objs, _ := a.pods.ByIndex(drain.PodsByNode, n.Name)
		for _, o := range objs {
			if p := o.(*autoscale.Pod); !p.Finished {
				pods = append(pods, p)
			}
		}
		an := autoscale.NodeOf(n, pods)
		nodes[n.Name] = an
		in.Nodes = append(in.Nodes, an)
		if v, ok := n.Annotations[UnneededSinceAnnotation]; ok {
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				in.Unneeded[n.Name] = t
			}
		}
	}
	objs, _ := a.pods.ByIndex(pendingIndex, "pending")
	for _, o := range objs {
		in.Pending = append(in.Pending, o.(*autoscale.Pod))
	}
	if dss, err := a.daemonSets.List(labels.Everything()); err == nil {
		for _, ds := range dss {
			in.DaemonSets = append(in.DaemonSets, autoscale.DaemonSetTemplatePod(ds))
		}
	}
	if pdbs, err := a.budgets.List(labels.Everything()); err == nil {
		for _, b := range pdbs {
			sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			if err != nil {
				continue
			}
			in.PDBs = append(in.PDBs, autoscale.PDB{Namespace: b.Namespace, Name: b.Name, Selector: sel, Allowed: b.Status.DisruptionsAllowed})
		}
	}
	deleting := map[string]bool{}
	for name, e := range ps.led.Entries {
		if e.Op == plan.OpDelete {
			deleting[name] = true
			if e.Voluntary && e.NextStep() == plan.StepDrain {
				in.Draining = append(in.Draining, name)
			}
		}
	}
	typeOf := make(map[string]string, len(ps.machines))
	for _, m := range ps.machines {
		typeOf[m.Name] = m.MachineType
	}
	for _, np := range ps.spec.Spec.NodePools {
		if !np.Autoscaled() {
			continue
		}
		p := autoscale.Pool{Name: np.Name, Min: int(*np.MinReplicas), Max: int(*np.MaxReplicas)}
		listed := map[string]bool{}
		for _, m := range ps.machines {
			listed[m.Name] = true
			if m.Pool != np.Name || m.Role == providers.RoleControlPlane || m.Phase == providers.PhaseDeleting || deleting[m.Name] {
				continue
			}
			n := nodes[m.Name]
			p.Machines = append(p.Machines, autoscale.Machine{Name: m.Name, Ready: n != nil && n.Ready, CreatedAt: m.CreatedAt})
		}
		for _, name := range sortedKeys(ps.led.Entries) {
			if e := ps.led.Entries[name]; e.Op == plan.OpCreate && e.Pool == np.Name && !listed[name] {
				p.Machines = append(p.Machines, autoscale.Machine{Name: name, CreatedAt: e.RecordedAt})
			}
		}
		p.Template, p.TemplateErr = r.poolTemplate(ctx, np, nodes, typeOf)
		in.Pools = append(in.Pools, p)
	}

	d := autoscale.Decide(in)
	ps.autoscale = &d
	r.keepTimers(ctx, ps, in.Unneeded, d.Unneeded)
	r.tellPods(d)
	r.autoscaleMetrics(d)

	out := map[string]plan.AutoscaledPool{}
	for pool, pd := range d.Pools {
		ap := plan.AutoscaledPool{Add: pd.Add, AddReason: pd.AddReason}
		for _, rm := range pd.Remove {
			ap.Remove = append(ap.Remove, plan.Removal{Machine: rm.Machine, Reason: rm.Reason})
		}
		out[pool] = ap
	}
	return out
}

func autoscaleSettings(s *v1alpha1.ClusterSpec) autoscale.Settings {
	a := s.Autoscaling
	st := autoscale.Settings{Threshold: float64(v1alpha1.DefaultScaleDownUtilizationThreshold) / 100,
		UnneededTime: v1alpha1.DefaultScaleDownUnneededTime, DelayAfterAdd: v1alpha1.DefaultScaleDownDelayAfterAdd}
	if a.ScaleDownUtilizationThreshold != nil {
		st.Threshold = float64(*a.ScaleDownUtilizationThreshold) / 100
	}
	if a.ScaleDownUnneededTime != nil {
		st.UnneededTime = a.ScaleDownUnneededTime.Duration
	}
	if a.ScaleDownDelayAfterAdd != nil {
		st.DelayAfterAdd = a.ScaleDownDelayAfterAdd.Duration
	}
	return st
}

// poolTemplate is what a new machine of np becomes: learned from a Ready
// Node of the pool when there is one (its allocatable is the truth), else
// declared: the labels and taints the joiner gives the pool's machines
// and what the provider says the machine type offers.
func (r *Reconciler) poolTemplate(ctx context.Context, np v1alpha1.NodePool, nodes map[string]*autoscale.Node, typeOf map[string]string) (autoscale.Template, string) {
	t := autoscale.Template{Labels: map[string]string{providers.LabelPool: np.Name,
		corev1.LabelOSStable: "linux", corev1.LabelArchStable: runtime.GOARCH}}
	for k, v := range np.Labels {
		t.Labels[k] = v
	}
	for _, tt := range np.Taints {
		t.Taints = append(t.Taints, corev1.Taint{Key: tt.Key, Value: tt.Value, Effect: corev1.TaintEffect(tt.Effect)})
	}
	var learned *autoscale.Node
	for _, name := range sortedKeys(nodes) {
		if n := nodes[name]; n.Pool == np.Name && n.Ready && n.Allocatable.Pods > 0 && typeOf[name] == np.MachineType {
			learned = n
			break
		}
	}
	if learned != nil {
		t.Allocatable = learned.Allocatable
		for k, v := range learned.Labels {
			if k != corev1.LabelHostname {
				t.Labels[k] = v
			}
		}
		return t, ""
	}
	res, ok := r.auto.types[np.MachineType]
	if !ok {
		var err error
		res, err = r.provider.MachineTypeResources(ctx, np.MachineType)
		if err != nil {
			return t, fmt.Sprintf("what a machine of type %q offers is unknown (%v), and the pool has no Ready node to learn it from", np.MachineType, err)
		}
		r.auto.types[np.MachineType] = res
	}
	t.Allocatable = autoscale.Resources{MilliCPU: res.MilliCPU, Memory: res.Memory, EphemeralStorage: res.EphemeralStorage, Pods: res.Pods}
	return t, ""
}

// keepTimers writes each Node's unneeded timer where it changed: set when
// a node becomes unneeded, removed when it no longer is.
func (r *Reconciler) keepTimers(ctx context.Context, ps *pass, before, after map[string]time.Time) {
	for _, n := range ps.nodes {
		was, had := before[n.Name]
		now, has := after[n.Name]
		_, annotated := n.Annotations[UnneededSinceAnnotation]
		var value *string
		switch {
		case has && (!had || !was.Equal(now)):
			v := now.UTC().Format(time.RFC3339)
			value = &v
		case !has && annotated:
		default:
			continue
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]*string{UnneededSinceAnnotation: value}}})
		_, err := r.opts.Client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil {
			ps.errs = append(ps.errs, fmt.Errorf("keeping the unneeded timer of node %s: %w", n.Name, err))
		}
	}
}

// tellPods records an Event on each pending pod whose verdict changed:
// TriggeredScaleUp naming the pool, or NotTriggerScaleUp with each pool's
// reason.
func (r *Reconciler) tellPods(d autoscale.Decision) {
	a := r.auto
	seen := make(map[string]bool, len(d.Pods))
	for _, v := range d.Pods {
		seen[v.Pod] = true
		if a.told[v.Pod] == v.Message || a.podEvents == nil {
			continue
		}
		a.told[v.Pod] = v.Message
		ns, name := splitKey(v.Pod)
		ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: name}
		switch v.Verdict {
		case autoscale.ScaleUp:
			a.podEvents.Event(ref, corev1.EventTypeNormal, "TriggeredScaleUp", "pod "+v.Message)
		case autoscale.NoPool, autoscale.NotSimulatedPod:
			a.podEvents.Event(ref, corev1.EventTypeNormal, "NotTriggerScaleUp", "pod didn't trigger scale-up: "+v.Message)
		}
	}
	for k := range a.told {
		if !seen[k] {
			delete(a.told, k)
		}
	}
}

func (r *Reconciler) autoscaleMetrics(d autoscale.Decision) {
	m := r.opts.Metrics
	if m == nil {
		return
	}
	counts := map[string]float64{}
	for _, v := range d.Pods {
		counts[string(v.Verdict)]++
	}
	for _, v := range []autoscale.VerdictCode{autoscale.FitsExisting, autoscale.WaitsForMachine, autoscale.ScaleUp, autoscale.NoPool, autoscale.NotSimulatedPod} {
		m.pendingPods.WithLabelValues(string(v)).Set(counts[string(v)])
	}
	unneeded := 0
	blocked := map[string]float64{}
	for _, n := range d.Nodes {
		switch n.State {
		case autoscale.Unneeded, autoscale.Removing:
			unneeded++
		case autoscale.Kept:
			blocked[n.Blocker]++
		}
	}
	m.unneededNodes.Set(float64(unneeded))
	m.scaleDownBlocks.Reset()
	for k, v := range blocked {
		m.scaleDownBlocks.WithLabelValues(k).Set(v)
	}
}

// fillAutoscaling puts the last decision in the status.
func (r *Reconciler) fillAutoscaling(ps *pass) {
	d := ps.autoscale
	if d == nil {
		r.status.Autoscaling = nil
		return
	}
	st := &v1alpha1.AutoscalingStatus{}
	current := map[string]int32{}
	for _, p := range ps.plan.Pools {
		current[p.Name] = p.Current
	}
	desired := map[string]int32{}
	for _, p := range ps.plan.Pools {
		desired[p.Name] = p.Desired
	}
	for _, np := range ps.spec.Spec.NodePools {
		if !np.Autoscaled() {
			continue
		}
		s := v1alpha1.AutoscaledPoolStatus{Name: np.Name, Min: *np.MinReplicas, Max: *np.MaxReplicas,
			Current: current[np.Name], Desired: desired[np.Name]}
		if pd, ok := d.Pools[np.Name]; ok {
			switch {
			case pd.Add > 0:
				s.Reason = pd.AddReason
			case len(pd.Remove) > 0:
				s.Reason = fmt.Sprintf("%d unneeded nodes removed", len(pd.Remove))
			}
		}
		st.Pools = append(st.Pools, s)
	}
	for i, v := range d.Pods {
		if i == v1alpha1.MaxListedMachines {
			st.PendingPodsNotListed = len(d.Pods) - i
			break
		}
		pp := v1alpha1.PendingPodStatus{Pod: v.Pod, Verdict: string(v.Verdict), Pool: v.Pool, Since: v.Since, Message: v.Message}
		for _, r := range v.Pools {
			pp.Pools = append(pp.Pools, v1alpha1.PoolVerdict{Pool: r.Pool, Reason: r.Code, Message: r.Message})
		}
		st.PendingPods = append(st.PendingPods, pp)
	}
	nodes := slices.DeleteFunc(slices.Clone(d.Nodes), func(n autoscale.NodeVerdict) bool { return n.State == autoscale.Needed })
	for i, n := range nodes {
		if i == v1alpha1.MaxListedMachines {
			st.NodesNotListed = len(nodes) - i
			break
		}
		st.Nodes = append(st.Nodes, v1alpha1.AutoscaledNodeStatus{Node: n.Node, Pool: n.Pool, State: string(n.State),
			Utilization: int32(n.Utilization*100 + 0.5), Blocker: n.Blocker, Message: n.Message})
	}
	st.DecidedAt = ps.now
	if prev := r.status.Autoscaling; prev != nil {
		same := *prev
		same.DecidedAt = ps.now
		if reflect.DeepEqual(&same, st) {
			st.DecidedAt = prev.DecidedAt
		}
	}
	r.status.Autoscaling = st
}

// noteTriggers remembers, for each machine a Create of an autoscaled pool
// names, when the pods it is for were found unschedulable.
func (r *Reconciler) noteTrigger(ps *pass, pool, machine string) {
	if r.auto == nil || ps.autoscale == nil {
		return
	}
	if pd, ok := ps.autoscale.Pools[pool]; ok && pd.Add > 0 && !pd.Triggered.IsZero() {
		r.auto.triggered[machine] = pd.Triggered
	}
}

// observeScaleUpLatency records, once a machine's provider call is made,
// how long after its pods were found unschedulable that was.
func (r *Reconciler) observeScaleUpLatency(machine string, at time.Time) {
	if r.auto == nil {
		return
	}
	if t, ok := r.auto.triggered[machine]; ok {
		delete(r.auto.triggered, machine)
		if r.opts.Metrics != nil {
			r.opts.Metrics.scaleUpLatency.Observe(at.Sub(t).Seconds())
		}
	}
}

func splitKey(key string) (string, string) {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	return ns, name
}

// trimDaemonSet keeps what the autoscaler reads of a DaemonSet: its pod
// template's scheduling fields and requests.
func trimDaemonSet(obj any) (any, error) {
	ds, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return obj, nil
	}
	tmpl := autoscale.TrimPodForAutoscaling(&corev1.Pod{ObjectMeta: ds.Spec.Template.ObjectMeta, Spec: ds.Spec.Template.Spec})
	return &appsv1.DaemonSet{
		TypeMeta:   ds.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: ds.Name, Namespace: ds.Namespace, UID: ds.UID, ResourceVersion: ds.ResourceVersion},
		Spec:       appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}},
	}, nil
}
