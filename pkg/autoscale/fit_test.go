package autoscale

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const gi = int64(1) << 30

// binOffering is an empty 4-cpu, 8Gi, 110-pod node named n1 in pool
// workers with labels zone=a and disktype=ssd.
func binOffering() *Bin {
	return NewBin("n1", "workers", Template{
		Allocatable: Resources{MilliCPU: 4000, Memory: 8 * gi, EphemeralStorage: 100 * gi, Pods: 110},
		Labels:      map[string]string{"zone": "a", "disktype": "ssd"},
	})
}

// podRequesting is a pod asking for cpu millicores and memory bytes.
func podRequesting(cpu, mem int64) *Pod {
	return &Pod{Namespace: "default", Name: "p", Requests: Resources{MilliCPU: cpu, Memory: mem, Pods: 1}}
}

func affinity(terms ...corev1.NodeSelectorTerm) *corev1.NodeSelector {
	return &corev1.NodeSelector{NodeSelectorTerms: terms}
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func TestCheck(t *testing.T) {
	dedicated := corev1.Taint{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name string
		pod  func(*Pod)
		bin  func(*Bin)
		want Misfit
	}{
		{name: "a small pod fits an empty node"},
		{
			name: "a pod with a constraint the simulation does not model is not simulated, whatever else holds",
			pod:  func(p *Pod) { p.NotSimulated = "required pod anti-affinity"; p.Requests.MilliCPU = 1e6 },
			want: Misfit{NotSimulated, "required pod anti-affinity is not simulated"},
		},
		{
			name: "a cordoned node takes no pod",
			bin:  func(b *Bin) { b.Unschedulable = true },
			want: Misfit{NodeUnschedulable, "node is cordoned (unschedulable)"},
		},
		{
			name: "a cordoned node takes a pod that tolerates the unschedulable taint",
			bin:  func(b *Bin) { b.Unschedulable = true },
			pod: func(p *Pod) {
				p.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists}}
			},
		},
		{
			name: "a cordoned node is reported before its taints",
			bin:  func(b *Bin) { b.Unschedulable = true; b.Taints = []corev1.Taint{dedicated} },
			want: Misfit{NodeUnschedulable, "node is cordoned (unschedulable)"},
		},
		{
			name: "a NoSchedule taint must be tolerated",
			bin:  func(b *Bin) { b.Taints = []corev1.Taint{dedicated} },
			want: Misfit{TaintNotTolerated, "taint dedicated=batch:NoSchedule not tolerated"},
		},
		{
			name: "a NoExecute taint without a value must be tolerated",
			bin:  func(b *Bin) { b.Taints = []corev1.Taint{{Key: "gpu", Effect: corev1.TaintEffectNoExecute}} },
			want: Misfit{TaintNotTolerated, "taint gpu:NoExecute not tolerated"},
		},
		{
			name: "a PreferNoSchedule taint only scores",
			bin:  func(b *Bin) { b.Taints = []corev1.Taint{{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule}} },
		},
		{
			name: "a toleration with a different value does not tolerate",
			bin:  func(b *Bin) { b.Taints = []corev1.Taint{dedicated} },
			pod: func(p *Pod) {
				p.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web"}}
			},
			want: Misfit{TaintNotTolerated, "taint dedicated=batch:NoSchedule not tolerated"},
		},
		{
			name: "Exists with an empty key tolerates every taint",
			bin:  func(b *Bin) { b.Taints = []corev1.Taint{dedicated, {Key: "gpu", Effect: corev1.TaintEffectNoExecute}} },
			pod:  func(p *Pod) { p.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}} },
		},
		{
			name: "a nodeSelector naming another value does not match",
			pod:  func(p *Pod) { p.NodeSelector = map[string]string{"disktype": "hdd"} },
			want: Misfit{NodeSelectorMismatch, "nodeSelector disktype=hdd does not match (node has disktype=ssd)"},
		},
		{
			name: "a nodeSelector naming a missing label does not match",
			pod:  func(p *Pod) { p.NodeSelector = map[string]string{"gpu": "true", "zone": "a"} },
			want: Misfit{NodeSelectorMismatch, "nodeSelector gpu=true does not match (node has no label gpu)"},
		},
		{
			name: "a nodeSelector that matches",
			pod:  func(p *Pod) { p.NodeSelector = map[string]string{"disktype": "ssd", "zone": "a"} },
		},
		{
			name: "required node affinity In another zone does not match",
			pod:  func(p *Pod) { p.RequiredAffinity = affinity(expr("zone", corev1.NodeSelectorOpIn, "b", "c")) },
			want: Misfit{NodeAffinityMismatch, "required node affinity zone In [b c] (node has a) does not match"},
		},
		{
			name: "required node affinity matches when one term does",
			pod: func(p *Pod) {
				p.RequiredAffinity = affinity(expr("zone", corev1.NodeSelectorOpIn, "b"), expr("disktype", corev1.NodeSelectorOpExists))
			},
		},
		{
			name: "required node affinity names every term's failing requirement",
			pod: func(p *Pod) {
				p.RequiredAffinity = affinity(expr("zone", corev1.NodeSelectorOpNotIn, "a"), expr("cores", corev1.NodeSelectorOpGt, "8"))
			},
			want: Misfit{NodeAffinityMismatch, "no term of the required node affinity matches (zone NotIn [a] (node has a); cores Gt [8])"},
		},
		{
			name: "matchFields on metadata.name matches the bin's name",
			pod: func(p *Pod) {
				p.RequiredAffinity = affinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}})
			},
		},
		{
			name: "matchFields on metadata.name rejects another node",
			pod: func(p *Pod) {
				p.RequiredAffinity = affinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}})
			},
			want: Misfit{NodeAffinityMismatch, "required node affinity metadata.name In [n2] (node has n1) does not match"},
		},
		{
			name: "a nodeSelector is reported before the required affinity",
			pod: func(p *Pod) {
				p.NodeSelector = map[string]string{"disktype": "hdd"}
				p.RequiredAffinity = affinity(expr("zone", corev1.NodeSelectorOpIn, "b"))
			},
			want: Misfit{NodeSelectorMismatch, "nodeSelector disktype=hdd does not match (node has disktype=ssd)"},
		},
		{
			name: "a host port in use on all addresses conflicts",
			bin:  func(b *Bin) { b.Ports = []HostPort{{Protocol: corev1.ProtocolTCP, Port: 8080}} },
			pod:  func(p *Pod) { p.HostPorts = []HostPort{{Protocol: corev1.ProtocolTCP, Port: 8080}} },
			want: Misfit{HostPortConflict, "host port 8080/TCP in use"},
		},
		{
			name: "a host port on one address conflicts with the same port on all addresses",
			bin:  func(b *Bin) { b.Ports = []HostPort{{Protocol: corev1.ProtocolTCP, IP: "0.0.0.0", Port: 8080}} },
			pod:  func(p *Pod) { p.HostPorts = []HostPort{{Protocol: corev1.ProtocolTCP, IP: "10.0.0.1", Port: 8080}} },
			want: Misfit{HostPortConflict, "host port 10.0.0.1:8080/TCP in use"},
		},
		{
			name: "a host port on all addresses conflicts with the same port on one",
			bin:  func(b *Bin) { b.Ports = []HostPort{{Protocol: corev1.ProtocolTCP, IP: "10.0.0.1", Port: 8080}} },
			pod:  func(p *Pod) { p.HostPorts = []HostPort{{Port: 8080}} },
			want: Misfit{HostPortConflict, "host port 8080/TCP in use"},
		},
		{
			name: "the same host port on two addresses does not conflict",
			bin:  func(b *Bin) { b.Ports = []HostPort{{Protocol: corev1.ProtocolTCP, IP: "10.0.0.1", Port: 8080}} },
			pod:  func(p *Pod) { p.HostPorts = []HostPort{{Protocol: corev1.ProtocolTCP, IP: "10.0.0.2", Port: 8080}} },
		},
		{
			name: "the same host port over another protocol does not conflict",
			bin:  func(b *Bin) { b.Ports = []HostPort{{Protocol: corev1.ProtocolTCP, Port: 53}} },
			pod:  func(p *Pod) { p.HostPorts = []HostPort{{Protocol: corev1.ProtocolUDP, Port: 53}} },
		},
		{
			name: "too little cpu and memory names both, with free amounts",
			bin:  func(b *Bin) { b.Add(podRequesting(3100, 5*gi)) },
			pod:  func(p *Pod) { p.Requests.MilliCPU, p.Requests.Memory = 1500, 4*gi },
			want: Misfit{InsufficientResources, "needs cpu 1500m, memory 4Gi; has free cpu 900m, memory 3Gi"},
		},
		{
			name: "only the insufficient resource is named",
			bin:  func(b *Bin) { b.Add(podRequesting(3100, 1*gi)) },
			pod:  func(p *Pod) { p.Requests.MilliCPU, p.Requests.Memory = 1500, 2*gi },
			want: Misfit{InsufficientResources, "needs cpu 1500m; has free cpu 900m"},
		},
		{
			name: "a request equal to what is free fits",
			bin:  func(b *Bin) { b.Add(podRequesting(3000, 6*gi)) },
			pod:  func(p *Pod) { p.Requests.MilliCPU, p.Requests.Memory = 1000, 2*gi },
		},
		{
			name: "a full node takes no pod, even one requesting nothing",
			bin:  func(b *Bin) { b.Allocatable.Pods = 1; b.Add(podRequesting(0, 0)) },
			pod:  func(p *Pod) { p.Requests = Resources{Pods: 1} },
			want: Misfit{InsufficientResources, "needs pods 1; has free pods 0"},
		},
		{
			name: "a resource requested at zero is not checked, even on an overcommitted node",
			bin:  func(b *Bin) { b.Add(podRequesting(5000, 0)) },
			pod:  func(p *Pod) { p.Requests.MilliCPU = 0 },
		},
		{
			name: "ephemeral storage is checked",
			pod:  func(p *Pod) { p.Requests.EphemeralStorage = 200 * gi },
			want: Misfit{InsufficientResources, "needs ephemeral-storage 200Gi; has free ephemeral-storage 100Gi"},
		},
		{
			name: "an extended resource the node lacks is insufficient",
			pod:  func(p *Pod) { p.Requests.Scalar = map[corev1.ResourceName]int64{"nvidia.com/gpu": 1} },
			want: Misfit{InsufficientResources, "needs nvidia.com/gpu 1; has free nvidia.com/gpu 0"},
		},
		{
			name: "an extended resource the node has fits",
			bin:  func(b *Bin) { b.Allocatable.Scalar = map[corev1.ResourceName]int64{"nvidia.com/gpu": 2} },
			pod:  func(p *Pod) { p.Requests.Scalar = map[corev1.ResourceName]int64{"nvidia.com/gpu": 2} },
		},
		{
			name: "hugepages are counted in bytes",
			bin:  func(b *Bin) { b.Allocatable.Scalar = map[corev1.ResourceName]int64{"hugepages-2Mi": 8 << 20} },
			pod:  func(p *Pod) { p.Requests.Scalar = map[corev1.ResourceName]int64{"hugepages-2Mi": 16 << 20} },
			want: Misfit{InsufficientResources, "needs hugepages-2Mi 16Mi; has free hugepages-2Mi 8Mi"},
		},
		{
			name: "a host port conflict is reported before resources",
			bin: func(b *Bin) {
				b.Add(&Pod{Requests: Resources{MilliCPU: 4000, Pods: 1}, HostPorts: []HostPort{{Protocol: corev1.ProtocolTCP, Port: 80}}})
			},
			pod:  func(p *Pod) { p.HostPorts = []HostPort{{Protocol: corev1.ProtocolTCP, Port: 80}} },
			want: Misfit{HostPortConflict, "host port 80/TCP in use"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := podRequesting(500, gi)
			if tt.pod != nil {
				tt.pod(p)
			}
			b := binOffering()
			if tt.bin != nil {
				tt.bin(b)
			}
			if got := Check(p, b); got != tt.want {
				t.Errorf("Check = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBinRemoveUndoesAdd(t *testing.T) {
	b := binOffering()
	a := &Pod{Name: "a", Requests: Resources{MilliCPU: 100, Memory: gi, Pods: 1, Scalar: map[corev1.ResourceName]int64{"x.io/y": 1}},
		HostPorts: []HostPort{{Protocol: corev1.ProtocolTCP, Port: 80}}}
	c := &Pod{Name: "c", Requests: Resources{MilliCPU: 200, Pods: 1}, HostPorts: []HostPort{{Protocol: corev1.ProtocolTCP, Port: 80}}}
	b.Add(a)
	b.Add(c)
	b.Remove(a)
	if b.Requested.MilliCPU != 200 || b.Requested.Memory != 0 || b.Requested.Pods != 1 || b.Requested.Scalar["x.io/y"] != 0 {
		t.Errorf("Requested after Remove = %+v", b.Requested)
	}
	if len(b.Ports) != 1 {
		t.Errorf("the other pod's port should stay bound: %+v", b.Ports)
	}
	if got := Check(&Pod{Requests: Resources{Pods: 1}, HostPorts: []HostPort{{Protocol: corev1.ProtocolTCP, Port: 80}}}, b); got.Code != HostPortConflict {
		t.Errorf("Check = %+v, want a host port conflict", got)
	}
}

func TestBinOfCountsTheNodesPods(t *testing.T) {
	n := &Node{Name: "n1", Pool: "workers", Allocatable: Resources{MilliCPU: 1000, Pods: 2},
		Pods: []*Pod{podRequesting(600, 0), podRequesting(100, 0)}}
	b := BinOf(n)
	if b.Requested.MilliCPU != 700 || b.Requested.Pods != 2 {
		t.Errorf("Requested = %+v", b.Requested)
	}
	if got := Check(podRequesting(100, 0), b); got.Code != InsufficientResources {
		t.Errorf("Check on a node at its pod limit = %+v", got)
	}
}

// BenchmarkCheck is one pending pod against one node with 30 pods, the
// pod carrying a nodeSelector, a required node affinity and a toleration.
func BenchmarkCheck(b *testing.B) {
	bin := binOffering()
	bin.Taints = []corev1.Taint{{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}}
	for range 30 {
		bin.Add(podRequesting(100, gi/8))
	}
	p := podRequesting(500, gi)
	p.NodeSelector = map[string]string{"disktype": "ssd"}
	p.RequiredAffinity = affinity(expr("zone", corev1.NodeSelectorOpIn, "a", "b"))
	p.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
	for b.Loop() {
		if m := Check(p, bin); m.Code != Fits {
			b.Fatal(m)
		}
	}
}
