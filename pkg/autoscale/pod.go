package autoscale

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/ptr"

	"github.com/seedhq/seed/providers"
)

// Annotations that say whether a pod may be evicted to empty its node.
// Both ecosystems' spellings are read, so workloads migrate unchanged.
const (
	AnnotationSafeToEvict             = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	AnnotationSafeToEvictLocalVolumes = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes"
	AnnotationDoNotDisrupt            = "karpenter.sh/do-not-disrupt"
)

// PodOf makes the compact record of p. Requests are computed as
// kube-scheduler does (resource.PodRequests with pod-level resources, which
// are on by default in v1.34), from the spec only: an in-place resize that
// the kubelet has not yet applied is not seen.
func PodOf(p *corev1.Pod) *Pod {
	reqs := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
	out := &Pod{
		Namespace:        p.Namespace,
		Name:             p.Name,
		NodeName:         p.Spec.NodeName,
		Labels:           p.Labels,
		Requests:         resourcesOf(reqs),
		Tolerations:      p.Spec.Tolerations,
		NodeSelector:     p.Spec.NodeSelector,
		HostPorts:        hostPortsOf(p),
		NotSimulated:     notSimulated(p),
		CreatedAt:        p.CreationTimestamp.Time,
		Owner:            ownerOf(p),
		LocalStorage:     localStorageOf(p),
		SafeToEvict:      safeToEvictOf(p),
		Terminating:      p.DeletionTimestamp != nil,
		Finished:         p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed,
		RequiredAffinity: requiredAffinityOf(p),
	}
	if p.DeletionTimestamp != nil {
		out.DeleteAt = p.DeletionTimestamp.Time
	}
	out.Requests.Pods = 1
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			out.Unschedulable = true
			out.Since = c.LastTransitionTime.Time
		}
	}
	return out
}

// NodeOf makes the compact record of n carrying pods, which the caller has
// already made compact and filtered to the non-terminal pods bound to n.
func NodeOf(n *corev1.Node, pods []*Pod) *Node {
	out := &Node{
		Name:          n.Name,
		Pool:          n.Labels[providers.LabelPool],
		Allocatable:   resourcesOf(n.Status.Allocatable),
		Labels:        n.Labels,
		Taints:        n.Spec.Taints,
		Unschedulable: n.Spec.Unschedulable,
		Pods:          pods,
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	return out
}

// resourcesOf converts a resource list the way the scheduler's framework
// does (framework.Resource.Add): cpu in millicores and everything else in
// whole units, rounded up. A name that is neither native nor a scalar
// resource in the scheduler's sense is dropped, as the scheduler drops it.
func resourcesOf(rl corev1.ResourceList) Resources {
	var r Resources
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU = q.MilliValue()
		case corev1.ResourceMemory:
			r.Memory = q.Value()
		case corev1.ResourceEphemeralStorage:
			r.EphemeralStorage = q.Value()
		case corev1.ResourcePods:
			r.Pods = q.Value()
		default:
			if v := q.Value(); v != 0 && isScalarResource(name) {
				if r.Scalar == nil {
					r.Scalar = map[corev1.ResourceName]int64{}
				}
				r.Scalar[name] = v
			}
		}
	}
	return r
}

// isScalarResource is kube-scheduler's IsScalarResourceName (in
// pkg/scheduler/util), restated because the root module does not import
// k8s.io/kubernetes: extended resources, hugepages, attachable volumes and
// other names in the kubernetes.io/ namespace.
func isScalarResource(name corev1.ResourceName) bool {
	s := string(name)
	return isExtendedResource(name) ||
		strings.HasPrefix(s, corev1.ResourceHugePagesPrefix) ||
		strings.Contains(s, corev1.ResourceDefaultNamespacePrefix) ||
		strings.HasPrefix(s, corev1.ResourceAttachableVolumesPrefix)
}

func isExtendedResource(name corev1.ResourceName) bool {
	s := string(name)
	native := !strings.Contains(s, "/") || strings.Contains(s, corev1.ResourceDefaultNamespacePrefix)
	if native || strings.HasPrefix(s, corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(validation.IsQualifiedName(corev1.DefaultResourceRequestsPrefix+s)) == 0
}

func requiredAffinityOf(p *corev1.Pod) *corev1.NodeSelector {
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		return a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	return nil
}

// hostPortsOf lists the host ports the scheduler's NodePorts plugin counts
// (pkg/scheduler/util.GetHostPorts): those of the containers and of the
// sidecars (init containers with restartPolicy Always). An ordinary init
// container's port is held only while it runs, so the scheduler ignores
// it, and so does this.
func hostPortsOf(p *corev1.Pod) []HostPort {
	var out []HostPort
	add := func(c *corev1.Container) {
		for _, port := range c.Ports {
			if port.HostPort <= 0 {
				continue
			}
			proto := port.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			out = append(out, HostPort{Protocol: proto, IP: port.HostIP, Port: port.HostPort})
		}
	}
	for i := range p.Spec.InitContainers {
		if isSidecar(&p.Spec.InitContainers[i]) {
			add(&p.Spec.InitContainers[i])
		}
	}
	for i := range p.Spec.Containers {
		add(&p.Spec.Containers[i])
	}
	return out
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// notSimulated names the first constraint of p that the fit checks do not
// model, or "" when there is none.
func notSimulated(p *corev1.Pod) string {
	if a := p.Spec.Affinity; a != nil {
		if a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			return "required pod affinity"
		}
		if a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			return "required pod anti-affinity"
		}
	}
	for _, c := range p.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == corev1.DoNotSchedule {
			return fmt.Sprintf("topology spread constraint on %s (DoNotSchedule)", c.TopologyKey)
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			return fmt.Sprintf("persistent volume claim %s (volume %s)", v.PersistentVolumeClaim.ClaimName, v.Name)
		}
		if v.Ephemeral != nil {
			return fmt.Sprintf("ephemeral volume %s", v.Name)
		}
	}
	if len(p.Spec.ResourceClaims) > 0 {
		return "resource claims"
	}
	return ""
}

func ownerOf(p *corev1.Pod) OwnerKind {
	if _, ok := p.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		return OwnerNode
	}
	ref := metav1.GetControllerOf(p)
	switch {
	case ref == nil:
		return OwnerNone
	case ref.Kind == "DaemonSet":
		return OwnerDaemonSet
	default:
		return OwnerOther
	}
}

func localStorageOf(p *corev1.Pod) string {
	safe := map[string]bool{}
	if list, ok := p.Annotations[AnnotationSafeToEvictLocalVolumes]; ok {
		for _, name := range strings.Split(list, ",") {
			safe[strings.TrimSpace(name)] = true
		}
	}
	for _, v := range p.Spec.Volumes {
		local := v.HostPath != nil || (v.EmptyDir != nil && v.EmptyDir.Medium != corev1.StorageMediumMemory)
		if local && !safe[v.Name] {
			return v.Name
		}
	}
	return ""
}

// safeToEvictOf reads the safe-to-evict annotations; Karpenter's
// do-not-disrupt wins over a cluster-autoscaler "true", since either one
// saying no is a no.
func safeToEvictOf(p *corev1.Pod) *bool {
	if p.Annotations[AnnotationDoNotDisrupt] == "true" {
		return ptr.To(false)
	}
	switch p.Annotations[AnnotationSafeToEvict] {
	case "true":
		return ptr.To(true)
	case "false":
		return ptr.To(false)
	}
	return nil
}

// TrimPodForAutoscaling returns a copy of p holding only what PodOf reads,
// for an informer's transform of objects that hold a pod template (the
// agent's DaemonSet cache; its pod cache keeps PodOf's records). Kept are
// the identity (name, namespace, uid, resourceVersion, labels, owner
// references, creation and deletion timestamps), the annotations PodOf reads, the node name and phase, the
// PodScheduled condition, and from the spec: requests (containers', init
// containers' and the pod's own), overhead, host ports, tolerations, node
// selector, required affinities, DoNotSchedule spread constraints, the
// volumes PodOf classifies and resource claims. Limits, images, commands,
// env, probes and the rest of the status are dropped.
func TrimPodForAutoscaling(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              p.Name,
			Namespace:         p.Namespace,
			UID:               p.UID,
			ResourceVersion:   p.ResourceVersion,
			Labels:            p.Labels,
			OwnerReferences:   p.OwnerReferences,
			CreationTimestamp: p.CreationTimestamp,
			DeletionTimestamp: p.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{
			NodeName:       p.Spec.NodeName,
			Tolerations:    p.Spec.Tolerations,
			NodeSelector:   p.Spec.NodeSelector,
			Overhead:       p.Spec.Overhead,
			ResourceClaims: p.Spec.ResourceClaims,
		},
		Status: corev1.PodStatus{Phase: p.Status.Phase},
	}
	for _, key := range []string{corev1.MirrorPodAnnotationKey, AnnotationSafeToEvict, AnnotationSafeToEvictLocalVolumes, AnnotationDoNotDisrupt} {
		if v, ok := p.Annotations[key]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[key] = v
		}
	}
	if p.Spec.Resources != nil && len(p.Spec.Resources.Requests) > 0 {
		out.Spec.Resources = &corev1.ResourceRequirements{Requests: p.Spec.Resources.Requests}
	}
	for i := range p.Spec.InitContainers {
		out.Spec.InitContainers = append(out.Spec.InitContainers, trimContainer(&p.Spec.InitContainers[i]))
	}
	for i := range p.Spec.Containers {
		out.Spec.Containers = append(out.Spec.Containers, trimContainer(&p.Spec.Containers[i]))
	}
	if a := p.Spec.Affinity; a != nil {
		var t corev1.Affinity
		if a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			t.NodeAffinity = &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution}
		}
		if a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			t.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution}
		}
		if a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			t.PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution}
		}
		if t != (corev1.Affinity{}) {
			out.Spec.Affinity = &t
		}
	}
	for _, c := range p.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == corev1.DoNotSchedule {
			out.Spec.TopologySpreadConstraints = append(out.Spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
				TopologyKey:       c.TopologyKey,
				WhenUnsatisfiable: c.WhenUnsatisfiable,
			})
		}
	}
	for _, v := range p.Spec.Volumes {
		tv := corev1.Volume{Name: v.Name}
		switch {
		case v.PersistentVolumeClaim != nil:
			tv.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.PersistentVolumeClaim.ClaimName}
		case v.Ephemeral != nil:
			// The claim template is large and nothing here reads it; only
			// that there is one matters.
			tv.Ephemeral = &corev1.EphemeralVolumeSource{}
		case v.HostPath != nil:
			tv.HostPath = &corev1.HostPathVolumeSource{Path: v.HostPath.Path}
		case v.EmptyDir != nil:
			tv.EmptyDir = &corev1.EmptyDirVolumeSource{Medium: v.EmptyDir.Medium}
		default:
			continue
		}
		out.Spec.Volumes = append(out.Spec.Volumes, tv)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			out.Status.Conditions = append(out.Status.Conditions, corev1.PodCondition{
				Type:               c.Type,
				Status:             c.Status,
				Reason:             c.Reason,
				LastTransitionTime: c.LastTransitionTime,
			})
		}
	}
	return out
}

// trimContainer keeps a container's name, requests, restart policy (which
// makes an init container a sidecar) and host ports.
func trimContainer(c *corev1.Container) corev1.Container {
	out := corev1.Container{
		Name:          c.Name,
		RestartPolicy: c.RestartPolicy,
		Resources:     corev1.ResourceRequirements{Requests: c.Resources.Requests},
	}
	for _, port := range c.Ports {
		if port.HostPort > 0 {
			out.Ports = append(out.Ports, corev1.ContainerPort{
				HostPort: port.HostPort,
				HostIP:   port.HostIP,
				Protocol: port.Protocol,
			})
		}
	}
	return out
}
