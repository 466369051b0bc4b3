package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

func autoscaled(name string, min, max int32) v1alpha1.NodePool {
	return v1alpha1.NodePool{Name: name, MinReplicas: &min, MaxReplicas: &max}
}

func autoscaleInput(machines []providers.Machine, nodes []Node, a map[string]AutoscaledPool, ops ...Operation) Input {
	return Input{Cluster: cluster([]v1alpha1.NodePool{autoscaled("auto", 1, 4)}), Self: "cp",
		Machines: append([]providers.Machine{controlPlane("cp")}, machines...), Nodes: append([]Node{ready("cp", v1alpha1.ControlPlanePool)}, nodes...),
		Now: now, Autoscaled: a, Operations: ops}
}

func actionsOf(p Plan, t ActionType) []Action {
	var out []Action
	for _, a := range p.Actions {
		if a.Type == t {
			out = append(out, a)
		}
	}
	return out
}

func TestAnAutoscaledPoolGrowsByWhatTheAutoscalerAddsWithinItsBounds(t *testing.T) {
	ms := []providers.Machine{machine("a1", "auto", time.Hour)}
	ns := []Node{ready("a1", "auto")}
	p := Compute(autoscaleInput(ms, ns, map[string]AutoscaledPool{"auto": {Add: 2, AddReason: "5 pending pods need 2 more machines"}}))
	creates := actionsOf(p, Create)
	if len(creates) != 2 || !strings.Contains(creates[0].Reason, "5 pending pods need 2 more machines") {
		t.Fatalf("creates = %+v", creates)
	}
	if got := p.Pools[1].Desired; got != 3 {
		t.Errorf("desired = %d, want 3", got)
	}
	// Beyond maxReplicas nothing more is created.
	p = Compute(autoscaleInput(ms, ns, map[string]AutoscaledPool{"auto": {Add: 10}}))
	if n := len(actionsOf(p, Create)); n != 3 {
		t.Errorf("creates = %d, want 3 (max 4)", n)
	}
	// Without a decision the pool keeps what it has; below min it grows.
	if p := Compute(autoscaleInput(ms, ns, nil)); len(p.Actions) != 0 || !p.Converged {
		t.Errorf("no decision: %v", p.Summary())
	}
	if p := Compute(autoscaleInput(nil, nil, nil)); len(actionsOf(p, Create)) != 1 {
		t.Errorf("below minReplicas: %v", p.Summary())
	}
}

func TestTheAutoscalersRemovalsAreVoluntaryDeletionsOfTheMachinesItNames(t *testing.T) {
	ms := []providers.Machine{machine("a1", "auto", time.Hour), machine("a2", "auto", time.Hour), machine("a3", "auto", time.Hour)}
	ns := []Node{ready("a1", "auto"), ready("a2", "auto"), ready("a3", "auto")}
	p := Compute(autoscaleInput(ms, ns, map[string]AutoscaledPool{"auto": {Remove: []Removal{{Machine: "a2", Reason: "autoscaler: node unneeded"}}}}))
	dels := actionsOf(p, Delete)
	if len(dels) != 1 || dels[0].Machine != "a2" || !dels[0].Voluntary || dels[0].Reason != "autoscaler: node unneeded" {
		t.Fatalf("deletes = %+v", dels)
	}
	// Never below minReplicas, and never the agent's own machine.
	p = Compute(autoscaleInput(ms[:1], ns[:1], map[string]AutoscaledPool{"auto": {Remove: []Removal{{Machine: "a1"}}}}))
	if len(p.Actions) != 0 {
		t.Errorf("at min: %v", p.Summary())
	}
}

func TestAVoluntaryDrainThatABudgetRefusesIsCancelledNotForced(t *testing.T) {
	ms := []providers.Machine{machine("a1", "auto", time.Hour), machine("a2", "auto", time.Hour)}
	ns := []Node{ready("a1", "auto"), ready("a2", "auto")}
	op := Operation{Type: OpDelete, Machine: "a2", Pool: "auto", Step: StepDrain, Voluntary: true,
		RecordedAt: now.Add(-time.Minute), DrainStartedAt: now.Add(-time.Minute), BlockedBy: []string{"default/web"}}
	p := Compute(autoscaleInput(ms, ns, nil, op))
	cancels := actionsOf(p, CancelDrain)
	if len(cancels) != 1 || cancels[0].Machine != "a2" || !strings.Contains(cancels[0].Reason, "PodDisruptionBudget default/web") {
		t.Fatalf("plan = %v", p.Summary())
	}
	if len(actionsOf(p, SkipDrain)) != 0 || len(actionsOf(p, Create)) != 0 {
		t.Errorf("a cancelled drain forces nothing and the machine still counts: %v", p.Summary())
	}
	// Past drainTimeout a voluntary drain is cancelled too; a spec-driven
	// one would be skipped (deleted anyway).
	op.BlockedBy, op.DrainStartedAt = nil, now.Add(-time.Hour)
	if p := Compute(autoscaleInput(ms, ns, nil, op)); len(actionsOf(p, CancelDrain)) != 1 || len(actionsOf(p, SkipDrain)) != 0 {
		t.Errorf("past drainTimeout: %v", p.Summary())
	}
	op.Voluntary = false
	if p := Compute(autoscaleInput(ms, ns, nil, op)); len(actionsOf(p, SkipDrain)) != 1 {
		t.Errorf("spec-driven drain past drainTimeout: %v", p.Summary())
	}
}
