package autoscale

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	schedulingv1 "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Bin is a node being packed: a real node with what its pods already take,
// or a machine yet to be made from a pool's Template, its DaemonSet pods
// already added.
type Bin struct {
	Name, Pool    string
	Allocatable   Resources
	Labels        map[string]string
	Taints        []corev1.Taint
	Unschedulable bool
	// Requested is the sum of the requests of the pods added, Pods
	// counting them.
	Requested Resources
	// Ports are the host ports the pods added bind.
	Ports []HostPort
}

// NewBin is an empty machine of template t, to be called name.
func NewBin(name, pool string, t Template) *Bin {
	return &Bin{
		Name:        name,
		Pool:        pool,
		Allocatable: t.Allocatable,
		Labels:      t.Labels,
		Taints:      t.Taints,
	}
}

// BinOf is n with its pods added.
func BinOf(n *Node) *Bin {
	b := &Bin{
		Name:          n.Name,
		Pool:          n.Pool,
		Allocatable:   n.Allocatable,
		Labels:        n.Labels,
		Taints:        n.Taints,
		Unschedulable: n.Unschedulable,
	}
	for _, p := range n.Pods {
		b.Add(p)
	}
	return b
}

// Add places p on b, whether or not it fits, as the scheduler's NodeInfo
// counts a pod bound to a node.
func (b *Bin) Add(p *Pod) {
	b.Requested.add(p.Requests, 1)
	b.Ports = append(b.Ports, p.HostPorts...)
}

// Remove takes p, added before, off b.
func (b *Bin) Remove(p *Pod) {
	b.Requested.add(p.Requests, -1)
	for _, hp := range p.HostPorts {
		if i := slices.Index(b.Ports, hp); i >= 0 {
			b.Ports = slices.Delete(b.Ports, i, i+1)
		}
	}
}

func (r *Resources) add(o Resources, sign int64) {
	r.MilliCPU += sign * o.MilliCPU
	r.Memory += sign * o.Memory
	r.EphemeralStorage += sign * o.EphemeralStorage
	r.Pods += sign * o.Pods
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[corev1.ResourceName]int64{}
		}
		r.Scalar[name] += sign * v
	}
}

// ReasonCode says which check a pod failed on a bin.
type ReasonCode string

const (
	Fits ReasonCode = ""
	// NodeUnschedulable: the node is cordoned and the pod does not
	// tolerate node.kubernetes.io/unschedulable:NoSchedule.
	NodeUnschedulable ReasonCode = "NodeUnschedulable"
	// TaintNotTolerated: a NoSchedule or NoExecute taint of the node is
	// not tolerated.
	TaintNotTolerated    ReasonCode = "TaintNotTolerated"
	NodeSelectorMismatch ReasonCode = "NodeSelectorMismatch"
	// NodeAffinityMismatch: no term of the pod's required node affinity
	// matches the node.
	NodeAffinityMismatch ReasonCode = "NodeAffinityMismatch"
	HostPortConflict     ReasonCode = "HostPortConflict"
	// InsufficientResources: the node's free allocatable lacks some
	// resource the pod requests, or its pod count is at the limit.
	InsufficientResources ReasonCode = "InsufficientResources"
	// NotSimulated: the pod has a constraint these checks do not model.
	NotSimulated ReasonCode = "NotSimulated"
)

// Misfit is why a pod does not fit a bin; the zero value means it fits.
// Message is meant for users, naming the taint, label, port or resources.
type Misfit struct {
	Code    ReasonCode
	Message string
}

// Check tells whether p fits b, with the semantics of kube-scheduler
// v1.34's filter plugins NodeUnschedulable, TaintToleration, NodeAffinity,
// NodePorts and NodeResourcesFit under their default configuration.
//
// The checks run in the scheduler's default plugin order, and the first
// failure is the one reported, as the scheduler reports for a node: not
// simulated, then unschedulable, taints, node selector, node affinity,
// host ports, resources. The node selector goes before the required node
// affinity because the scheduler's NodeAffinity plugin matches it first.
func Check(p *Pod, b *Bin) Misfit {
	if p.NotSimulated != "" {
		return Misfit{NotSimulated, p.NotSimulated + " is not simulated"}
	}
	if b.Unschedulable && !schedulingv1.TolerationsTolerateTaint(p.Tolerations, &unschedulableTaint) {
		return Misfit{NodeUnschedulable, "node is cordoned (unschedulable)"}
	}
	if t, bad := schedulingv1.FindMatchingUntoleratedTaint(b.Taints, p.Tolerations, blocksScheduling); bad {
		return Misfit{TaintNotTolerated, fmt.Sprintf("taint %s not tolerated", t.ToString())}
	}
	if m, ok := checkNodeSelector(p, b); !ok {
		return m
	}
	if m, ok := checkNodeAffinity(p, b); !ok {
		return m
	}
	if m, ok := checkPorts(p, b); !ok {
		return m
	}
	return checkResources(p, b)
}

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// blocksScheduling selects the taints the scheduler filters on;
// PreferNoSchedule only scores.
func blocksScheduling(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

// checkNodeSelector matches nodeSelector as labels.SelectorFromSet does:
// every key present with the same value.
func checkNodeSelector(p *Pod, b *Bin) (Misfit, bool) {
	matches := true
	for k, want := range p.NodeSelector {
		if have, ok := b.Labels[k]; !ok || have != want {
			matches = false
			break
		}
	}
	if matches {
		return Misfit{}, true
	}
	// Sorted, so that the key reported is the same every time.
	for _, k := range slices.Sorted(maps.Keys(p.NodeSelector)) {
		want := p.NodeSelector[k]
		have, ok := b.Labels[k]
		if ok && have == want {
			continue
		}
		msg := fmt.Sprintf("nodeSelector %s=%s does not match", k, want)
		if ok {
			msg += fmt.Sprintf(" (node has %s=%s)", k, have)
		} else {
			msg += fmt.Sprintf(" (node has no label %s)", k)
		}
		return Misfit{NodeSelectorMismatch, msg}, false
	}
	return Misfit{}, true
}

// checkNodeAffinity matches the required node affinity with the same
// selector the scheduler builds (nodeaffinity.GetRequiredNodeAffinity
// builds it with NewLazyErrorNodeSelector, and ignores parse errors, so a
// term that does not parse matches nothing).
func checkNodeAffinity(p *Pod, b *Bin) (Misfit, bool) {
	if p.RequiredAffinity == nil {
		return Misfit{}, true
	}
	node := b.asNode()
	if ok, _ := nodeaffinity.NewLazyErrorNodeSelector(p.RequiredAffinity).Match(node); ok {
		return Misfit{}, true
	}
	return Misfit{NodeAffinityMismatch, describeAffinityMiss(p.RequiredAffinity, node)}, false
}

// asNode is the little of a Node that node affinity reads: labels, and
// the name for matchFields metadata.name.
func (b *Bin) asNode() *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: b.Name, Labels: b.Labels}}
}

// describeAffinityMiss says what of ns the node fails: the first failing
// requirement of each term.
func describeAffinityMiss(ns *corev1.NodeSelector, node *corev1.Node) string {
	var misses []string
	for _, term := range ns.NodeSelectorTerms {
		if miss := firstMiss(term, node); miss != "" {
			misses = append(misses, miss)
		}
	}
	switch len(misses) {
	case 0:
		return "required node affinity has no term that can match"
	case 1:
		return fmt.Sprintf("required node affinity %s does not match", misses[0])
	default:
		return fmt.Sprintf("no term of the required node affinity matches (%s)", strings.Join(misses, "; "))
	}
}

// firstMiss names the first requirement of term that node fails, each one
// judged alone by the same matcher.
func firstMiss(term corev1.NodeSelectorTerm, node *corev1.Node) string {
	one := func(t corev1.NodeSelectorTerm) bool {
		ok, _ := nodeaffinity.NewLazyErrorNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{t}}).Match(node)
		return ok
	}
	for _, r := range term.MatchExpressions {
		if !one(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{r}}) {
			return describeRequirement(r, node.Labels[r.Key])
		}
	}
	for _, r := range term.MatchFields {
		if !one(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{r}}) {
			return describeRequirement(r, node.Name)
		}
	}
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return ""
	}
	return "(an invalid term)"
}

func describeRequirement(r corev1.NodeSelectorRequirement, have string) string {
	s := r.Key + " " + string(r.Operator)
	if len(r.Values) > 0 {
		s += " [" + strings.Join(r.Values, " ") + "]"
	}
	if have != "" {
		s += fmt.Sprintf(" (node has %s)", have)
	}
	return s
}

// checkPorts applies NodePorts' conflict rule: a port binds a protocol and
// port on an IP, empty meaning 0.0.0.0, and 0.0.0.0 conflicts with every
// IP.
func checkPorts(p *Pod, b *Bin) (Misfit, bool) {
	for _, want := range p.HostPorts {
		want = sanitizePort(want)
		for _, used := range b.Ports {
			used = sanitizePort(used)
			if used.Port != want.Port || used.Protocol != want.Protocol {
				continue
			}
			if want.IP == anyIP || used.IP == anyIP || want.IP == used.IP {
				where := fmt.Sprintf("%d/%s", want.Port, want.Protocol)
				if want.IP != anyIP {
					where = want.IP + ":" + where
				}
				return Misfit{HostPortConflict, fmt.Sprintf("host port %s in use", where)}, false
			}
		}
	}
	return Misfit{}, true
}

const anyIP = "0.0.0.0"

func sanitizePort(hp HostPort) HostPort {
	if hp.IP == "" {
		hp.IP = anyIP
	}
	if hp.Protocol == "" {
		hp.Protocol = corev1.ProtocolTCP
	}
	return hp
}

// checkResources is NodeResourcesFit's filter: a pod slot always, and
// each resource the pod requests a non-zero amount of, against the
// allocatable left. A scalar resource the node does not offer has none
// left.
func checkResources(p *Pod, b *Bin) Misfit {
	var needs, free []string
	short := func(name string, want, left int64, format resource.Format, milli bool) {
		if want <= 0 || want <= left {
			return
		}
		needs = append(needs, name+" "+quantity(want, format, milli))
		free = append(free, name+" "+quantity(left, format, milli))
	}
	alloc, used, req := &b.Allocatable, &b.Requested, &p.Requests
	if used.Pods+1 > alloc.Pods {
		needs = append(needs, "pods 1")
		free = append(free, fmt.Sprintf("pods %d", alloc.Pods-used.Pods))
	}
	short("cpu", req.MilliCPU, alloc.MilliCPU-used.MilliCPU, resource.DecimalSI, true)
	short("memory", req.Memory, alloc.Memory-used.Memory, resource.BinarySI, false)
	short("ephemeral-storage", req.EphemeralStorage, alloc.EphemeralStorage-used.EphemeralStorage, resource.BinarySI, false)
	if len(req.Scalar) > 0 {
		for _, name := range slices.Sorted(maps.Keys(req.Scalar)) {
			format := resource.DecimalSI
			if strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
				format = resource.BinarySI
			}
			short(string(name), req.Scalar[name], alloc.Scalar[name]-used.Scalar[name], format, false)
		}
	}
	if len(needs) == 0 {
		return Misfit{}
	}
	return Misfit{InsufficientResources, fmt.Sprintf("needs %s; has free %s", strings.Join(needs, ", "), strings.Join(free, ", "))}
}

func quantity(v int64, format resource.Format, milli bool) string {
	if milli {
		return resource.NewMilliQuantity(v, format).String()
	}
	return resource.NewQuantity(v, format).String()
}
