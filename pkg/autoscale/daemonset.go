package autoscale

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	schedulingv1 "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// DaemonSetTemplatePod is the pod ds would run on a node, as the DaemonSet
// controller makes it (its NewPod): the template's spec in ds's namespace,
// with the tolerations the controller adds to every daemon pod, and owned
// by a DaemonSet.
func DaemonSetTemplatePod(ds *appsv1.DaemonSet) *Pod {
	pod := &corev1.Pod{
		ObjectMeta: *ds.Spec.Template.ObjectMeta.DeepCopy(),
		Spec:       *ds.Spec.Template.Spec.DeepCopy(),
	}
	pod.Namespace = ds.Namespace
	if pod.Name == "" {
		pod.Name = ds.Name
	}
	pod.CreationTimestamp = ds.CreationTimestamp
	pod.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))}
	addDaemonTolerations(&pod.Spec)
	return PodOf(pod)
}

// addDaemonTolerations adds what the DaemonSet controller's
// AddOrUpdateDaemonPodTolerations (pkg/controller/daemon/util) adds, so that
// node conditions never keep a daemon pod off a node or evict it:
// not-ready and unreachable for NoExecute; disk, memory and PID pressure
// and unschedulable for NoSchedule; network-unavailable for NoSchedule
// when the pod uses the host's network.
func addDaemonTolerations(spec *corev1.PodSpec) {
	add := func(key string, effect corev1.TaintEffect) {
		t := corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect}
		found := false
		for i := range spec.Tolerations {
			// A matching one loses any tolerationSeconds: daemon pods
			// tolerate these for good.
			if spec.Tolerations[i].MatchToleration(&t) {
				spec.Tolerations[i] = t
				found = true
			}
		}
		if !found {
			spec.Tolerations = append(spec.Tolerations, t)
		}
	}
	add(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)
	if spec.HostNetwork {
		add(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)
	}
}

// DaemonSetPods picks, of daemonSets (each DaemonSetTemplatePod's result),
// the pods a new node of template t would run, by the DaemonSet
// controller's rule (NodeShouldRunDaemonPod): the pod's nodeSelector and
// required node affinity match the node's labels, and its tolerations
// (the controller's defaults included) tolerate every NoSchedule and
// NoExecute taint. Resources are not part of the rule: a daemon pod that
// does not fit still belongs to the node, pending there.
//
// A template naming a node (spec.nodeName) runs only there, never on a
// new machine.
func DaemonSetPods(t Template, daemonSets []*Pod) []*Pod {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: t.Labels}}
	var out []*Pod
	for _, p := range daemonSets {
		if p.NodeName != "" {
			continue
		}
		sel := &corev1.Pod{Spec: corev1.PodSpec{NodeSelector: p.NodeSelector}}
		if p.RequiredAffinity != nil {
			sel.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: p.RequiredAffinity}}
		}
		if ok, _ := nodeaffinity.GetRequiredNodeAffinity(sel).Match(node); !ok {
			continue
		}
		if _, bad := schedulingv1.FindMatchingUntoleratedTaint(t.Taints, p.Tolerations, blocksScheduling); bad {
			continue
		}
		out = append(out, p)
	}
	return out
}
