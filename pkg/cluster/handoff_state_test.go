package cluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/kube"
)

// TestHandOffIsReadFromTheAgentsPodAndStatus walks handOffState and
// GetStatus through what a real API server returns as the agent starts.
func TestHandOffIsReadFromTheAgentsPodAndStatus(t *testing.T) {
	env := shared.Env(t)
	ctx := t.Context()
	client, err := kube.NewCore(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitAPIServer(ctx, client); err != nil {
		t.Fatalf("waitAPIServer: %v", err)
	}
	ns := v1alpha1.DefaultNamespace
	if got, want := handOffState(ctx, client, "c-control-plane").waiting, "agent pod not scheduled yet"; got != want {
		t.Errorf("with no namespace: %q, want %q", got, want)
	}

	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "seed-agent-1", Labels: map[string]string{"app.kubernetes.io/name": "seed-agent"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "seed-agent:x"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := handOffState(ctx, client, "c-control-plane").waiting, "agent pod seed-agent-1 is Pending; no status yet"; got != want {
		t.Errorf("with a new pod: %q, want %q", got, want)
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "image not present"}}}}
	if _, err := env.Client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := handOffState(ctx, client, "c-control-plane").waiting, "agent pod seed-agent-1: ErrImageNeverPull image not present"; got != want {
		t.Errorf("with a waiting container: %q, want %q", got, want)
	}

	status := "machines:\n- name: c-control-plane\n  pool: control-plane\n  role: control-plane\n  phase: Running\n  nodeReady: true\n  managed: true\n"
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.StatusConfigMap}, Data: map[string]string{v1alpha1.StatusKey: status},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := handOffState(ctx, client, "c-control-plane"); !got.adopted {
		t.Errorf("with the machine managed: %+v, want the hand-off done", got)
	}
	if got := handOffState(ctx, client, "other").waiting; got != "agent has not adopted the machine yet" {
		t.Errorf("for a machine the status does not list: %q", got)
	}

	st, err := GetStatus(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Machines) != 1 || !st.Machines[0].Managed {
		t.Errorf("GetStatus = %+v", st)
	}
}
