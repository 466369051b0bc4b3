package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/velero"
	"github.com/seedhq/seed/providers"
)

// The agent's own state carries the label Velero leaves out of backups, so
// no restore brings back a stale ledger, status or Lease; a status written
// by an agent from before the label gets it on the next write.
func TestAgentStateIsLabelledOutOfBackups(t *testing.T) {
	h := newHarness(t, specYAML(0))
	ctx := context.Background()
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.StatusConfigMap, Namespace: h.ns,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "seed-agent", "kept": "yes"}}}
	if _, err := h.admin.CoreV1().ConfigMaps(h.ns).Create(ctx, old, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.provider.OnCreate = func(m providers.Machine) { h.registerNode(m.Name, m.Pool, true) }
	stop := make(chan error, 1)
	lctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); <-stop }()
	go func() {
		stop <- RunAsLeader(lctx, LeaderOptions{Client: h.agent, Namespace: h.ns, Lease: v1alpha1.LeaseName, Identity: "agent-a",
			LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 250 * time.Millisecond},
			func(ctx context.Context) { _ = h.newReconciler("agent-a").Run(ctx) })
	}()
	h.setSpec(specYAML(1))
	eventually(t, 20*time.Second, "1 worker", func() bool { return len(h.workers("workers")) == 1 })

	labelled := func(l map[string]string) bool { return l[velero.ExcludeLabel] == "true" }
	eventually(t, 10*time.Second, "the status, ledger and Lease to carry "+velero.ExcludeLabel, func() bool {
		st, err1 := h.admin.CoreV1().ConfigMaps(h.ns).Get(ctx, v1alpha1.StatusConfigMap, metav1.GetOptions{})
		led, err2 := h.admin.CoreV1().ConfigMaps(h.ns).Get(ctx, v1alpha1.LedgerConfigMap, metav1.GetOptions{})
		lease, err3 := h.admin.CoordinationV1().Leases(h.ns).Get(ctx, v1alpha1.LeaseName, metav1.GetOptions{})
		return err1 == nil && err2 == nil && err3 == nil && labelled(st.Labels) && st.Labels["kept"] == "yes" &&
			labelled(led.Labels) && labelled(lease.Labels)
	})
	spec, err := h.admin.CoreV1().ConfigMaps(h.ns).Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil || labelled(spec.Labels) {
		t.Errorf("spec ConfigMap labels %v (%v): the spec belongs in backups", spec.GetLabels(), err)
	}
}
