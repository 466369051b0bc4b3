package controller

import (
	"fmt"
	"testing"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

// Past MaxListedMachines the status lists the control plane and the
// machines that need a look, and counts the rest, so that it stays small
// at thousands of machines.
func TestStatusListsEveryMachineOfASmallClusterAndTheTroubledOnesOfALargeOne(t *testing.T) {
	healthy := func(n int) []v1alpha1.MachineStatus {
		var ms []v1alpha1.MachineStatus
		for i := range n {
			ms = append(ms, v1alpha1.MachineStatus{Name: fmt.Sprintf("w-%05d", i), Pool: "w", Role: "worker", Phase: "Running", NodeReady: true, Managed: true})
		}
		return ms
	}
	cp := v1alpha1.MachineStatus{Name: "cp", Pool: "control-plane", Role: "control-plane", Phase: "Running", NodeReady: true, Managed: true}
	for _, c := range []struct {
		name        string
		machines    []v1alpha1.MachineStatus
		wantListed  int
		wantOmitted int
	}{
		{"small: all listed", append(healthy(99), cp), 100, 0},
		{"large and healthy: the control plane alone", append(healthy(5000), cp), 1, 5000},
		{"large, a few in trouble: those and the control plane", func() []v1alpha1.MachineStatus {
			ms := append(healthy(5000), cp)
			ms[1].NodeReady = false
			ms[2].Operation = "delete/drain"
			ms[3].Phase = "Pending"
			ms[4].LastError = "boom"
			ms[5].Managed = false
			return ms
		}(), 6, 4995},
		{"large, all in trouble: at most the limit, and the control plane", func() []v1alpha1.MachineStatus {
			ms := append(healthy(5000), cp)
			for i := range 5000 {
				ms[i].NodeReady = false
			}
			return ms
		}(), v1alpha1.MaxListedMachines + 1, 5000 - v1alpha1.MaxListedMachines},
	} {
		t.Run(c.name, func(t *testing.T) {
			listed, omitted := listedMachines(c.machines)
			if len(listed) != c.wantListed || omitted != c.wantOmitted {
				t.Errorf("listed %d, omitted %d; want %d and %d", len(listed), omitted, c.wantListed, c.wantOmitted)
			}
			found := false
			for _, m := range listed {
				found = found || m.Name == "cp"
			}
			if !found {
				t.Error("the control plane is not listed")
			}
		})
	}
}
