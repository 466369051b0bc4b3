package cluster

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

func TestStatusChangedIgnoresTheTimeOfWritingAlone(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := &v1alpha1.ClusterStatus{Agent: "a", UpdatedAt: t0, Pools: []v1alpha1.PoolStatus{{Name: "w", Desired: 1}}}
	rewritten := *base
	rewritten.UpdatedAt = t0.Add(time.Minute)
	scaled := *base
	scaled.Pools = []v1alpha1.PoolStatus{{Name: "w", Desired: 3}}
	failed := *base
	failed.LastError = "listing machines: boom"
	for _, tc := range []struct {
		name       string
		prev, next *v1alpha1.ClusterStatus
		want       bool
	}{
		{"the first report", nil, base, true},
		{"the same report rewritten", base, &rewritten, false},
		{"a pool scaled", base, &scaled, true},
		{"an error", base, &failed, true},
		{"identical", base, base, false},
	} {
		if got := StatusChanged(tc.prev, tc.next); got != tc.want {
			t.Errorf("%s: StatusChanged = %t, want %t", tc.name, got, tc.want)
		}
	}
}

func TestWatchStatusShowsEachChangeOnce(t *testing.T) {
	env := shared.Env(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ns, client := v1alpha1.DefaultNamespace, env.Client.CoreV1()
	if _, err := client.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Logf("namespace: %v", err)
	}
	write := func(st v1alpha1.ClusterStatus) {
		raw, _ := yaml.Marshal(st)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.StatusConfigMap}, Data: map[string]string{v1alpha1.StatusKey: string(raw)}}
		if _, err := client.ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			if _, err := client.ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		_ = client.ConfigMaps(ns).Delete(context.Background(), v1alpha1.StatusConfigMap, metav1.DeleteOptions{})
	})
	write(v1alpha1.ClusterStatus{Agent: "a", UpdatedAt: time.Now()})

	var mu sync.Mutex
	var shown []string
	done := make(chan error)
	go func() {
		done <- WatchStatus(ctx, env.Config, 20*time.Millisecond, func(st *v1alpha1.ClusterStatus) error {
			mu.Lock()
			defer mu.Unlock()
			shown = append(shown, st.LastError)
			return nil
		}, func(err error) { t.Errorf("reading status: %v", err) })
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(shown) }
	waitFor := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("shown %d reports, want %d", count(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(1)
	write(v1alpha1.ClusterStatus{Agent: "a", UpdatedAt: time.Now().Add(time.Minute)})
	time.Sleep(200 * time.Millisecond)
	write(v1alpha1.ClusterStatus{Agent: "a", LastError: "boom", UpdatedAt: time.Now()})
	waitFor(2)
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("WatchStatus = %v after interrupt, want nil", err)
	}
	if mu.Lock(); len(shown) != 2 || shown[1] != "boom" {
		t.Errorf("shown %q, want the first report and the one with an error", shown)
	}
	mu.Unlock()
}

func TestStatusTableShowsWhyTheAutoscalerDidWhatItDid(t *testing.T) {
	since := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	st := &v1alpha1.ClusterStatus{Autoscaling: &v1alpha1.AutoscalingStatus{
		Pools: []v1alpha1.AutoscaledPoolStatus{{Name: "general", Min: 0, Max: 3, Current: 1, Desired: 2, Reason: "2 pending pods need 1 more machines (1 to 2; maxReplicas 3)"}},
		PendingPods: []v1alpha1.PendingPodStatus{{Pod: "default/huge", Verdict: "NoPool", Since: since,
			Message: "no pool can take it: pool general: larger than a new machine of the pool: needs cpu 3; has free cpu 900m"}},
		Nodes: []v1alpha1.AutoscaledNodeStatus{{Node: "seed-general-x", Pool: "general", State: "Kept", Blocker: "PodDisruptionBudget", Utilization: 12,
			Message: "PodDisruptionBudget default/web allows 0 disruptions; moving pod default/web-1 would need more"}},
	}}
	var b strings.Builder
	if err := PrintStatus(&b, st, "table"); err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"general 0 3 1 2 2 pending pods need 1 more machines",
		"default/huge 10:00:00 NoPool no pool can take it: pool general: larger than a new machine",
		"seed-general-x general 12% Kept (PodDisruptionBudget) PodDisruptionBudget default/web allows 0 disruptions",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
