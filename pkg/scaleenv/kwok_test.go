package scaleenv

import (
	"fmt"
	"testing"
	"time"

	"github.com/seedhq/seed/providers"
)

// kwok plays the kubelets, and must stay faithful when it falls behind: a
// kwok starved of CPU renews its Node Leases late, the controller-manager
// marks those Nodes' pods NotReady, and a kubelet that reports again makes
// them Ready again. Without that, a loaded machine leaves a workload short
// for good (TestScale1000 once waited 15 minutes for pods kwok never
// touched again). Here kwok is stopped past the Lease's grace period and
// continued: the pods go NotReady, then Ready again.
func TestKwokGivesPodsTheirReadinessBackAfterTheirNodesLapse(t *testing.T) {
	ctx := t.Context()
	env := Start(ctx, t, Options{Spec: Spec("lapse", "0s", []Pool{{Name: "general", Replicas: 2}}), NodeLeaseDuration: 10 * time.Second})
	for i := range 2 {
		if _, err := env.Provider.CreateMachine(ctx, providers.MachineSpec{Name: fmt.Sprintf("lapse-general-%d", i), Pool: "general",
			Role: providers.RoleWorker, KubernetesVersion: env.version}); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.RunWorkload(ctx, "app", 4); err != nil {
		t.Fatal(err)
	}
	ready := func() int32 {
		n, _, err := env.WorkloadReady(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s:\n%s", what, env.Diagnose(ctx, "app"))
			}
			time.Sleep(time.Second)
		}
	}
	wait("the workload ready", func() bool { return ready() == 4 })

	kwok := env.components["kwok"]
	if err := kwok.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = kwok.Resume()
		}
	}()
	// Lease 10s, grace 20s: the pods are marked NotReady soon after.
	wait("the pods marked NotReady while kwok stands still", func() bool { return ready() < 4 })
	if err := kwok.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	wait("the workload ready again once kwok runs", func() bool { return ready() == 4 })
}
