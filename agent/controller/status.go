package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/pkg/velero"
	"github.com/seedhq/seed/providers"
)

const appliedVersionKey = "applied-spec-version"

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// planNodes digests Nodes into what the planner reads.
func planNodes(nodes []*corev1.Node) []plan.Node {
	out := make([]plan.Node, 0, len(nodes))
	for _, n := range nodes {
		pn := plan.Node{
			Name:           n.Name,
			Pool:           n.Labels[providers.LabelPool],
			Unschedulable:  n.Spec.Unschedulable,
			KubeletVersion: n.Status.NodeInfo.KubeletVersion,
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				pn.Ready = c.Status == corev1.ConditionTrue
				pn.Unreachable = c.Status == corev1.ConditionUnknown
				pn.ReadyTransition = c.LastTransitionTime.Time
			}
		}
		if pn.ReadyTransition.IsZero() {
			// A Node without a Ready condition yet has been NotReady since it registered.
			pn.ReadyTransition = n.CreationTimestamp.Time
		}
		out = append(out, pn)
	}
	return out
}

// report writes what the pass saw and did to the status ConfigMap: the last
// phase of every pass, also when an earlier one failed.
func (r *Reconciler) report(ctx context.Context, ps *pass) error {
	if ps.spec != nil && ps.led != nil {
		r.status.Drains = ps.drains
		r.fillStatus(ps)
	}
	if len(ps.errs) > 0 {
		r.status.LastError = errors.Join(ps.errs...).Error()
	}
	return r.writeStatus(ctx, ps.now)
}

// fillStatus turns the observation and the plan into the status report.
func (r *Reconciler) fillStatus(ps *pass) {
	spec, p, now := ps.spec, ps.plan, ps.now
	st := &r.status
	ready := map[string]bool{}
	for _, n := range ps.nodes {
		ready[n.Name] = nodeReady(n)
	}
	managed := map[string]bool{v1alpha1.ControlPlanePool: true}
	for _, np := range spec.Spec.NodePools {
		managed[np.Name] = true
	}
	st.Machines = st.Machines[:0]
	adopted := false
	phases := map[[2]string]float64{}
	listed := make(map[string]bool, len(ps.machines))
	add := func(m providers.Machine) {
		listed[m.Name] = true
		ms := v1alpha1.MachineStatus{
			Name: m.Name, Pool: m.Pool, Role: string(m.Role), Phase: string(m.Phase),
			NodeReady: ready[m.Name], KubernetesVersion: m.KubernetesVersion, ProviderID: m.ProviderID,
			// Managed: the agent has matched the machine to the control
			// plane or a pool of the spec in force, so it heals, scales and
			// rolls it. Orphans and machines of removed pools are not.
			Managed:   managed[m.Pool] || (m.Role == providers.RoleControlPlane),
			LastError: r.failures[m.Name],
		}
		if e, ok := ps.led.Entries[m.Name]; ok {
			ms.Operation = string(e.Op) + "/" + string(e.NextStep())
			if e.LastError != "" {
				ms.LastError = e.LastError
			}
			if e.Op == plan.OpDelete {
				ms.Managed = false
			}
		}
		st.Machines = append(st.Machines, ms)
		if m.Name == r.opts.Self && ms.Managed {
			adopted = true
		}
		phases[[2]string{m.Pool, string(m.Phase)}]++
	}
	for _, m := range ps.machines {
		add(m)
	}
	// Creations the provider does not list yet are machines too.
	for _, name := range sortedKeys(ps.led.Entries) {
		if e := ps.led.Entries[name]; e.Op == plan.OpCreate && !listed[name] {
			add(providers.Machine{Name: name, Pool: e.Pool, Role: providers.Role(e.Role), MachineType: e.MachineType,
				KubernetesVersion: e.KubernetesVersion, Phase: providers.PhasePending})
		}
	}
	for name := range r.failures {
		if _, ok := ps.led.Entries[name]; !ok && !listed[name] {
			delete(r.failures, name) // an operation that ended: its Event and lastError told
		}
	}
	sort.Slice(st.Machines, func(i, j int) bool { return st.Machines[i].Name < st.Machines[j].Name })
	st.Machines, st.MachinesNotListed = listedMachines(st.Machines)
	r.fillReplacement(ps)
	r.fillAutoscaling(ps)
	if r.opts.Metrics != nil {
		r.opts.Metrics.machines.Reset()
		for k, v := range phases {
			r.opts.Metrics.machines.WithLabelValues(k[0], k[1]).Set(v)
		}
	}
	st.Pools = st.Pools[:0]
	for _, ps := range p.Pools {
		st.Pools = append(st.Pools, v1alpha1.PoolStatus{Name: ps.Name, Desired: ps.Desired, Current: ps.Current,
			Ready: ps.Ready, Updated: ps.Updated, Unhealthy: ps.Unhealthy})
	}
	st.Plan = st.Plan[:0]
	for _, a := range p.Actions[:min(len(p.Actions), v1alpha1.MaxListedActions)] {
		st.Plan = append(st.Plan, v1alpha1.PlannedAction{Action: string(a.Type), Pool: a.Pool, Machine: a.Machine, Reason: a.Reason})
	}
	st.PlanNotListed = len(p.Actions) - len(st.Plan)
	if adopted {
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionAdopted, Status: "True", Reason: "Managed",
			Message: fmt.Sprintf("the agent manages machine %s, which it runs on", r.opts.Self)}, now)
	} else {
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionAdopted, Status: "False", Reason: "SelfNotFound",
			Message: fmt.Sprintf("the provider does not list machine %s, which the agent runs on", r.opts.Self)}, now)
	}
	paused := "False"
	if spec.Spec.Paused {
		paused = "True"
	}
	st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionPaused, Status: paused, Reason: "Spec"}, now)
	halted := ""
	for _, c := range p.Conditions {
		if c.Type == plan.ConditionRemediationHalted {
			halted = c.Message
		}
	}
	if m := r.opts.Metrics; m != nil {
		m.remediation.Set(0)
		if halted != "" {
			m.remediation.Set(1)
		}
		m.drainBlocked.Reset()
		for _, d := range st.Drains {
			if len(d.BlockedBy) > 0 {
				m.drainBlocked.WithLabelValues(d.Machine).Set(now.Sub(d.StartedAt).Seconds())
			}
		}
	}
	if halted != "" {
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionRemediationAllowed, Status: "False", Reason: "TooManyUnhealthy", Message: halted}, now)
	} else {
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionRemediationAllowed, Status: "True", Reason: "WithinMaxUnhealthy"}, now)
	}
	if p.Converged {
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: "True", Reason: "Converged", Message: "every pool has its machines Ready and up to date"}, now)
	} else {
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: "False", Reason: "Reconciling", Message: fmt.Sprintf("%d actions planned", len(p.Actions))}, now)
	}
}

// listedMachines is what the status lists of all, sorted by name (see
// ClusterStatus.Machines), and how many it leaves out.
func listedMachines(all []v1alpha1.MachineStatus) ([]v1alpha1.MachineStatus, int) {
	if len(all) <= v1alpha1.MaxListedMachines {
		return all, 0
	}
	keep := make([]v1alpha1.MachineStatus, 0, v1alpha1.MaxListedMachines)
	for _, m := range all {
		controlPlane := m.Role == string(providers.RoleControlPlane)
		attention := m.Phase != string(providers.PhaseRunning) || !m.NodeReady || !m.Managed || m.Operation != "" || m.LastError != ""
		// The control plane is always there: the seed finds its adoption
		// by it.
		if controlPlane || (attention && len(keep) < v1alpha1.MaxListedMachines) {
			keep = append(keep, m)
		}
	}
	return keep, len(all) - len(keep)
}

// writeStatus stores the status (and the spec in force) in the status
// ConfigMap, when it differs from what was last written: updatedAt is when
// the content last changed.
func (r *Reconciler) writeStatus(ctx context.Context, now time.Time) error {
	previous := r.status.UpdatedAt
	body, err := yaml.Marshal(r.status)
	if err != nil {
		return fmt.Errorf("encoding status: %w", err)
	}
	data := map[string]string{v1alpha1.StatusKey: string(body)}
	if r.lastGood != nil {
		applied, err := yaml.Marshal(r.lastGood)
		if err != nil {
			return fmt.Errorf("encoding the applied spec: %w", err)
		}
		data[appliedSpecKey] = string(applied)
		data[appliedVersionKey] = r.lastGoodVersion
	}
	if maps.Equal(data, r.lastWritten) {
		return nil
	}
	r.status.UpdatedAt = now.UTC().Truncate(time.Second)
	stamped, err := yaml.Marshal(r.status)
	if err != nil {
		return fmt.Errorf("encoding status: %w", err)
	}
	data[v1alpha1.StatusKey] = string(stamped)
	written := maps.Clone(data)
	cms := r.opts.Client.CoreV1().ConfigMaps(r.opts.Namespace)
	cm, err := cms.Get(ctx, v1alpha1.StatusConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.StatusConfigMap, Namespace: r.opts.Namespace,
			Labels: statusLabels(nil)}, Data: data}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	} else if err == nil {
		cm.Data, cm.Labels = data, statusLabels(cm.Labels)
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		r.status.UpdatedAt = previous
		return fmt.Errorf("writing status %s/%s: %w", r.opts.Namespace, v1alpha1.StatusConfigMap, err)
	}
	r.lastWritten = written
	return nil
}

// fillReplacement shows the control-plane replacement under way, if any,
// as its list of steps, and the metric of the step it stands at.
func (r *Reconciler) fillReplacement(ps *pass) {
	st := &r.status
	st.ControlPlaneReplacement = nil
	var current plan.Step
	for _, name := range sortedKeys(ps.led.Entries) {
		e := ps.led.Entries[name]
		if e.Op != plan.OpReplaceControlPlane {
			continue
		}
		rs := &v1alpha1.ReplacementStatus{Old: e.Replaces, New: name, KubernetesVersion: e.KubernetesVersion, StartedAt: e.RecordedAt}
		current = e.NextStep()
		steps := plan.ReplaceSteps
		if plan.ReplaceStepIndex(current) < 0 {
			steps = []plan.Step{plan.StepPrepare, plan.StepJoin, plan.StepWaitReady, current}
		}
		at := slices.Index(steps, current)
		for i, step := range steps {
			s := v1alpha1.ReplacementStep{Name: string(step), State: v1alpha1.StepPending}
			switch {
			case i < at:
				s.State = v1alpha1.StepDone
			case i == at:
				s.State, s.Since, s.Waiting, s.LastError = v1alpha1.StepCurrent, e.StepStartedAt, e.Waiting, e.LastError
			}
			rs.Steps = append(rs.Steps, s)
		}
		st.ControlPlaneReplacement = rs
		break
	}
	if r.opts.Metrics != nil {
		for _, step := range append(slices.Clone(plan.ReplaceSteps), plan.StepRollBack) {
			v := 0.0
			if step == current {
				v = 1
			}
			r.opts.Metrics.replacementStep.WithLabelValues(string(step)).Set(v)
		}
	}
}

// statusLabels are the status ConfigMap's labels: what it has, and the
// agent's own, which keep it out of backups (a restored status would
// report a cluster that is gone).
func statusLabels(have map[string]string) map[string]string {
	l := maps.Clone(have)
	if l == nil {
		l = map[string]string{}
	}
	l["app.kubernetes.io/managed-by"] = "seed-agent"
	l[velero.ExcludeLabel] = "true"
	return l
}
