package autoscale

import (
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func daemonSet(name string, spec func(*corev1.PodSpec)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", UID: types.UID("uid-" + name)},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: requests("cpu", "100m", "memory", "50Mi")}}},
		}},
	}
	if spec != nil {
		spec(&ds.Spec.Template.Spec)
	}
	return ds
}

func TestDaemonSetTemplatePodIsTheControllersPod(t *testing.T) {
	ds := daemonSet("cni", func(s *corev1.PodSpec) {
		s.HostNetwork = true
		s.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64)}}
		s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9100, HostPort: 9100}}
	})
	p := DaemonSetTemplatePod(ds)
	if p.Owner != OwnerDaemonSet || p.Namespace != "kube-system" || p.Name != "cni" {
		t.Errorf("identity: %+v", p)
	}
	if !reflect.DeepEqual(p.Requests, Resources{MilliCPU: 100, Memory: 50 << 20, Pods: 1}) {
		t.Errorf("Requests = %+v", p.Requests)
	}
	if len(p.HostPorts) != 1 {
		t.Errorf("HostPorts = %+v", p.HostPorts)
	}
	// Six defaults, network-unavailable for hostNetwork; the template's own
	// not-ready toleration is replaced, losing its tolerationSeconds.
	if len(p.Tolerations) != 7 {
		t.Errorf("Tolerations = %+v, want the controller's 7", p.Tolerations)
	}
	for _, tol := range p.Tolerations {
		if tol.TolerationSeconds != nil {
			t.Errorf("toleration %+v keeps its seconds", tol)
		}
	}
	if len(ds.Spec.Template.Spec.Tolerations) != 1 {
		t.Errorf("the DaemonSet's own template was changed: %+v", ds.Spec.Template.Spec.Tolerations)
	}
	plain := DaemonSetTemplatePod(daemonSet("plain", nil))
	if slices.ContainsFunc(plain.Tolerations, func(t corev1.Toleration) bool { return t.Key == corev1.TaintNodeNetworkUnavailable }) {
		t.Errorf("a pod without hostNetwork tolerates network-unavailable: %+v", plain.Tolerations)
	}
}

func TestDaemonSetPods(t *testing.T) {
	all := []*Pod{
		DaemonSetTemplatePod(daemonSet("everywhere", nil)),
		DaemonSetTemplatePod(daemonSet("ssd-only", func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"disktype": "ssd"} })),
		DaemonSetTemplatePod(daemonSet("zone-b", func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: affinity(expr("zone", corev1.NodeSelectorOpIn, "b"))}}
		})),
		DaemonSetTemplatePod(daemonSet("tolerates-all", func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		})),
		DaemonSetTemplatePod(daemonSet("tolerates-gpu", func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}
		})),
		DaemonSetTemplatePod(daemonSet("pinned", func(s *corev1.PodSpec) { s.NodeName = "n7" })),
	}
	names := func(ps []*Pod) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	labels := map[string]string{"zone": "a", "disktype": "ssd"}
	tests := []struct {
		name     string
		template Template
		want     []string
	}{
		{"an untainted node runs every DaemonSet that selects it",
			Template{Labels: labels},
			[]string{"everywhere", "ssd-only", "tolerates-all", "tolerates-gpu"}},
		{"a tainted node runs only the DaemonSets tolerating the taint, an empty key with Exists tolerating all",
			Template{Labels: labels, Taints: []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
			[]string{"tolerates-all", "tolerates-gpu"}},
		{"a PreferNoSchedule taint keeps no DaemonSet away",
			Template{Labels: labels, Taints: []corev1.Taint{{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule}}},
			[]string{"everywhere", "ssd-only", "tolerates-all", "tolerates-gpu"}},
		{"the taints the controller tolerates by default keep no DaemonSet away",
			Template{Labels: map[string]string{"zone": "b"}, Taints: []corev1.Taint{
				{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute},
				{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule},
				{Key: corev1.TaintNodeDiskPressure, Effect: corev1.TaintEffectNoSchedule},
			}},
			[]string{"everywhere", "zone-b", "tolerates-all", "tolerates-gpu"}},
		{"network-unavailable keeps off the DaemonSets without hostNetwork",
			Template{Taints: []corev1.Taint{{Key: corev1.TaintNodeNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule}}},
			[]string{"tolerates-all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(DaemonSetPods(tt.template, all)); !slices.Equal(got, tt.want) {
				t.Errorf("DaemonSetPods = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDaemonSetPodsOfANewBinFitTheirNode(t *testing.T) {
	tmpl := Template{Allocatable: Resources{MilliCPU: 2000, Memory: 4 << 30, Pods: 110}, Labels: map[string]string{"zone": "a"},
		Taints: []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}}}
	b := NewBin("new-1", "workers", tmpl)
	for _, p := range DaemonSetPods(tmpl, []*Pod{DaemonSetTemplatePod(daemonSet("agent", nil))}) {
		if m := Check(p, b); m.Code != Fits {
			t.Fatalf("the DaemonSet's pod does not fit its own node: %+v", m)
		}
		b.Add(p)
	}
	if b.Requested.MilliCPU != 100 || b.Requested.Pods != 1 {
		t.Errorf("Requested = %+v", b.Requested)
	}
}
