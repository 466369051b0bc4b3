package autoscale

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var podTime = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func requests(kv ...string) corev1.ResourceRequirements {
	rl := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		rl[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return corev1.ResourceRequirements{Requests: rl}
}

// richPod uses everything PodOf reads, and much that it does not.
func richPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "shop", UID: "u-1", ResourceVersion: "42",
			Labels:            map[string]string{"app": "web"},
			CreationTimestamp: metav1.NewTime(podTime),
			Annotations: map[string]string{
				AnnotationSafeToEvict:               "true",
				AnnotationSafeToEvictLocalVolumes:   "cache, scratch",
				"deployment.kubernetes.io/revision": "3",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", UID: "rs", Controller: ptr.To(true)}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}},
		},
		Spec: corev1.PodSpec{
			NodeName: "n1",
			InitContainers: []corev1.Container{
				{Name: "migrate", Image: "migrate:1", Resources: requests("cpu", "2", "memory", "1Gi")},
				{Name: "proxy", Image: "envoy:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
					Resources: requests("cpu", "100m", "memory", "64Mi"),
					Ports:     []corev1.ContainerPort{{ContainerPort: 9901, HostPort: 9901}}},
				{Name: "wait", Image: "busybox", Ports: []corev1.ContainerPort{{ContainerPort: 1, HostPort: 7000}}},
			},
			Containers: []corev1.Container{{
				Name: "app", Image: "web:2", Command: []string{"/web"}, Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi"),
						corev1.ResourceEphemeralStorage: resource.MustParse("1Gi"), "nvidia.com/gpu": resource.MustParse("1"),
						"hugepages-2Mi": resource.MustParse("4Mi"),
					},
					Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), "nvidia.com/gpu": resource.MustParse("1")},
				},
				Ports:          []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080, Protocol: corev1.ProtocolUDP, HostIP: "10.0.0.1"}, {ContainerPort: 80}},
				ReadinessProbe: &corev1.Probe{InitialDelaySeconds: 3},
			}},
			Overhead:     corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")},
			Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule}},
			NodeSelector: map[string]string{"disktype": "ssd"},
			Affinity: &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}}},
					}}},
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 1}},
				},
				PodAntiAffinity: &corev1.PodAntiAffinity{
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 1}},
				},
			},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{TopologyKey: "zone", WhenUnsatisfiable: corev1.ScheduleAnyway, MaxSkew: 1}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
			},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
					Message: "0/3 nodes are available", LastTransitionTime: metav1.NewTime(podTime.Add(time.Minute))},
				{Type: corev1.PodReady, Status: corev1.ConditionFalse},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "web:2"}},
		},
	}
}

func TestPodOfReadsEverythingTheSimulationNeeds(t *testing.T) {
	p := richPod()
	got := PodOf(p)
	want := &Pod{
		Namespace: "shop", Name: "web-1", NodeName: "n1",
		Labels: map[string]string{"app": "web"},
		// Init: max(migrate 2 + proxy-so-far 0, proxy 100m) = 2 cpu; regular:
		// app 500m + sidecar proxy 100m = 600m; max is 2; overhead 10m.
		Requests: Resources{
			MilliCPU: 2010, Memory: 1 << 30, EphemeralStorage: 1 << 30, Pods: 1,
			Scalar: map[corev1.ResourceName]int64{"nvidia.com/gpu": 1, "hugepages-2Mi": 4 << 20},
		},
		Tolerations:      p.Spec.Tolerations,
		NodeSelector:     map[string]string{"disktype": "ssd"},
		RequiredAffinity: p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution,
		// The sidecar's port and the app's; the ordinary init container's
		// is held only while it runs.
		HostPorts: []HostPort{
			{Protocol: corev1.ProtocolTCP, Port: 9901},
			{Protocol: corev1.ProtocolUDP, IP: "10.0.0.1", Port: 8080},
		},
		Unschedulable: true,
		Since:         podTime.Add(time.Minute),
		CreatedAt:     podTime,
		Owner:         OwnerOther,
		// cache is listed as safe; tmp is memory-backed.
		LocalStorage: "logs",
		SafeToEvict:  ptr.To(true),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PodOf:\n got %+v\nwant %+v", got, want)
	}
}

func TestPodOf(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*corev1.Pod)
		check  func(*Pod) bool
	}{
		{"pod-level requests replace the containers' sum", func(p *corev1.Pod) {
			p.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}
		}, func(p *Pod) bool { return p.Requests.MilliCPU == 3010 }},
		{"a pod requesting nothing still takes a pod slot", func(p *corev1.Pod) {
			p.Spec.InitContainers, p.Spec.Containers, p.Spec.Overhead = nil, []corev1.Container{{Name: "c"}}, nil
		}, func(p *Pod) bool { return reflect.DeepEqual(p.Requests, Resources{Pods: 1}) }},
		{"a DaemonSet controller makes a DaemonSet pod", func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: "DaemonSet", Name: "agent", Controller: ptr.To(true)}}
		}, func(p *Pod) bool { return p.Owner == OwnerDaemonSet }},
		{"an owner that is not the controller leaves the pod unowned", func(p *corev1.Pod) {
			p.OwnerReferences[0].Controller = nil
		}, func(p *Pod) bool { return p.Owner == OwnerNone }},
		{"a mirror pod belongs to its node", func(p *corev1.Pod) {
			p.Annotations[corev1.MirrorPodAnnotationKey] = "abc"
		}, func(p *Pod) bool { return p.Owner == OwnerNode }},
		{"required pod affinity is not simulated", func(p *corev1.Pod) {
			p.Spec.Affinity.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "zone"}}}
		}, func(p *Pod) bool { return p.NotSimulated == "required pod affinity" }},
		{"required pod anti-affinity is not simulated", func(p *corev1.Pod) {
			p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution = []corev1.PodAffinityTerm{{TopologyKey: "kubernetes.io/hostname"}}
		}, func(p *Pod) bool { return p.NotSimulated == "required pod anti-affinity" }},
		{"a DoNotSchedule spread constraint is not simulated", func(p *corev1.Pod) {
			p.Spec.TopologySpreadConstraints[0].WhenUnsatisfiable = corev1.DoNotSchedule
		}, func(p *Pod) bool { return p.NotSimulated == "topology spread constraint on zone (DoNotSchedule)" }},
		{"a persistent volume claim is not simulated", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-0"}}})
		}, func(p *Pod) bool { return p.NotSimulated == "persistent volume claim data-0 (volume data)" }},
		{"an ephemeral volume is not simulated", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}})
		}, func(p *Pod) bool { return p.NotSimulated == "ephemeral volume scratch" }},
		{"resource claims are not simulated", func(p *corev1.Pod) {
			p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu"}}
		}, func(p *Pod) bool { return p.NotSimulated == "resource claims" }},
		{"do-not-disrupt makes the pod unsafe to evict whatever safe-to-evict says", func(p *corev1.Pod) {
			p.Annotations[AnnotationDoNotDisrupt] = "true"
		}, func(p *Pod) bool { return p.SafeToEvict != nil && !*p.SafeToEvict }},
		{"no safe-to-evict annotation leaves SafeToEvict unset", func(p *corev1.Pod) {
			delete(p.Annotations, AnnotationSafeToEvict)
		}, func(p *Pod) bool { return p.SafeToEvict == nil }},
		{"local volumes all listed as safe leave no local storage", func(p *corev1.Pod) {
			p.Annotations[AnnotationSafeToEvictLocalVolumes] = "cache,logs"
		}, func(p *Pod) bool { return p.LocalStorage == "" }},
		{"a deletion timestamp makes the pod terminating", func(p *corev1.Pod) {
			p.DeletionTimestamp = ptr.To(metav1.NewTime(podTime))
		}, func(p *Pod) bool { return p.Terminating }},
		{"a scheduled pod is not unschedulable", func(p *corev1.Pod) {
			p.Status.Conditions[0] = corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}
		}, func(p *Pod) bool { return !p.Unschedulable && p.Since.IsZero() }},
		{"a resource name the scheduler does not count is dropped", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests["unqualified"] = resource.MustParse("1")
		}, func(p *Pod) bool { _, ok := p.Requests.Scalar["unqualified"]; return !ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := richPod()
			tt.modify(p)
			got := PodOf(p)
			if !tt.check(got) {
				t.Errorf("PodOf gave %+v", got)
			}
			// Whatever the pod, trimming it changes nothing PodOf reads.
			if trimmed := PodOf(TrimPodForAutoscaling(p)); !reflect.DeepEqual(trimmed, got) {
				t.Errorf("PodOf(TrimPodForAutoscaling(p)) = %+v, PodOf(p) = %+v", trimmed, got)
			}
		})
	}
}

func TestTrimPodForAutoscalingKeepsWhatPodOfAndADrainRead(t *testing.T) {
	p := richPod()
	p.DeletionTimestamp = ptr.To(metav1.NewTime(podTime))
	p.Annotations[corev1.MirrorPodAnnotationKey] = "abc"
	trimmed := TrimPodForAutoscaling(p)
	if got, want := PodOf(trimmed), PodOf(p); !reflect.DeepEqual(got, want) {
		t.Errorf("PodOf(TrimPodForAutoscaling(p)) = %+v\nwant PodOf(p) = %+v", got, want)
	}
	if trimmed.UID != p.UID || trimmed.ResourceVersion != p.ResourceVersion || trimmed.Status.Phase != p.Status.Phase ||
		trimmed.DeletionTimestamp == nil || !reflect.DeepEqual(trimmed.OwnerReferences, p.OwnerReferences) {
		t.Errorf("a drain's fields were lost: %+v", trimmed.ObjectMeta)
	}
	c := trimmed.Spec.Containers[0]
	if c.Image != "" || c.Command != nil || c.Env != nil || c.ReadinessProbe != nil || c.Resources.Limits != nil || len(c.Ports) != 1 {
		t.Errorf("the container keeps more than requests and host ports: %+v", c)
	}
	if trimmed.ManagedFields != nil || len(trimmed.Annotations) != 3 || len(trimmed.Status.Conditions) != 1 ||
		trimmed.Status.ContainerStatuses != nil || len(trimmed.Spec.Volumes) != 3 || trimmed.Spec.TopologySpreadConstraints != nil ||
		trimmed.Spec.Affinity.PodAntiAffinity != nil || trimmed.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution != nil {
		t.Errorf("the trimmed pod keeps what nothing reads: %+v", trimmed)
	}
}

func TestNodeOf(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "w-1", Labels: map[string]string{"seed.dev/pool": "workers"}},
		Spec:       corev1.NodeSpec{Unschedulable: true, Taints: []corev1.Taint{{Key: "a", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("3800m"), corev1.ResourceMemory: resource.MustParse("7Gi"),
				corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("50Gi"),
				"nvidia.com/gpu": resource.MustParse("2"), "hugepages-1Gi": resource.MustParse("0"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	pods := []*Pod{{Name: "a"}}
	got := NodeOf(n, pods)
	want := &Node{
		Name: "w-1", Pool: "workers", Labels: n.Labels, Taints: n.Spec.Taints, Unschedulable: true, Ready: true, Pods: pods,
		Allocatable: Resources{MilliCPU: 3800, Memory: 7 << 30, Pods: 110, EphemeralStorage: 50 << 30,
			Scalar: map[corev1.ResourceName]int64{"nvidia.com/gpu": 2}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NodeOf:\n got %+v\nwant %+v", got, want)
	}
}
