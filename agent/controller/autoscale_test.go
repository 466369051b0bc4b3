package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/seedhq/seed/pkg/autoscale"
)

const autoscaledSpec = `apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata:
  name: test
spec:
  kubernetesVersion: v1.34.2
  provider:
    docker: {}
  nodePools:
  - name: auto
    minReplicas: 0
    maxReplicas: 3
  autoscaling:
    scaleDownUnneededTime: 2s
    scaleDownDelayAfterAdd: 1s
`

// pendingPod creates a ReplicaSet-owned pod requesting cpu and marks it
// Unschedulable, as kube-scheduler would (no scheduler runs here).
func (h *harness) pendingPod(ctx context.Context, name, cpu string) *corev1.Pod {
	h.t.Helper()
	yes := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: types.UID("rs-" + h.ns), Controller: &yes}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
	created, err := h.admin.CoreV1().Pods(h.ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.Now(), Message: "0/1 nodes are available"}}
	created, err = h.admin.CoreV1().Pods(h.ns).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return created
}

func (h *harness) bind(ctx context.Context, pod, node string) {
	h.t.Helper()
	err := h.admin.CoreV1().Pods(h.ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod},
		Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) podEvents(ctx context.Context, pod, reason string) []string {
	list, err := h.admin.CoreV1().Events(h.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}

func TestAutoscalerGrowsAPoolFromPendingPodsAndShrinksItWhenIdle(t *testing.T) {
	ctx := t.Context()
	h := newHarness(t, autoscaledSpec)
	h.startAgent("agent-a")

	// Three pods of 1.5 CPUs: one a 2-CPU machine, so three machines, from zero.
	for i := range 3 {
		h.pendingPod(ctx, fmt.Sprintf("web-%d", i), "1500m")
	}
	// And one no machine of the pool can hold.
	h.pendingPod(ctx, "huge", "3")
	eventually(t, 20*time.Second, "three machines in pool auto", func() bool { return len(h.workers("auto")) == 3 })
	consistently(t, 2*time.Second, "no fourth machine", func() bool { return len(h.workers("auto")) == 3 })

	eventually(t, 10*time.Second, "status explaining every pending pod", func() bool {
		st := h.status().Autoscaling
		if st == nil || len(st.Pools) != 1 || st.Pools[0].Desired != 3 {
			return false
		}
		verdicts := map[string]string{}
		for _, p := range st.PendingPods {
			verdicts[strings.TrimPrefix(p.Pod, h.ns+"/")] = p.Verdict + ": " + p.Message
		}
		return strings.HasPrefix(verdicts["huge"], "NoPool: no pool can take it: pool auto: larger than a new machine of the pool") &&
			(strings.HasPrefix(verdicts["web-0"], "WaitsForMachine") || strings.HasPrefix(verdicts["web-0"], "FitsExisting"))
	})
	eventually(t, 10*time.Second, "Events on the pods", func() bool {
		up := h.podEvents(ctx, "web-0", "TriggeredScaleUp")
		not := h.podEvents(ctx, "huge", "NotTriggerScaleUp")
		return len(up) > 0 && strings.Contains(up[0], "pool auto") && len(not) > 0 && strings.Contains(not[0], "pool auto: larger than")
	})

	// The scheduler places the pods, one a node; then two go away.
	machines := h.workers("auto")
	for i, m := range machines {
		h.bind(ctx, fmt.Sprintf("web-%d", i), m)
	}
	for i := 1; i < 3; i++ {
		if err := h.admin.CoreV1().Pods(h.ns).Delete(ctx, fmt.Sprintf("web-%d", i), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Idle nodes carry their timer, then go; the busy one stays.
	eventually(t, 10*time.Second, "an unneeded timer on an idle node", func() bool {
		n, err := h.admin.CoreV1().Nodes().Get(ctx, machines[1], metav1.GetOptions{})
		return err == nil && n.Annotations[UnneededSinceAnnotation] != ""
	})
	eventually(t, 30*time.Second, "the pool down to the one busy machine", func() bool {
		w := h.workers("auto")
		return len(w) == 1 && w[0] == machines[0]
	})
	st := h.status().Autoscaling
	for _, n := range st.Nodes {
		if n.Node == machines[0] && n.State != string(autoscale.Needed) {
			t.Errorf("busy node listed as %+v", n)
		}
	}
	// The machine goes first, its Node and the Event last.
	eventually(t, 10*time.Second, "DeletedMachine events for both removed nodes", func() bool { return len(h.events("DeletedMachine")) >= 2 })
}
