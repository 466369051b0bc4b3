package controller

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/seedhq/seed/agent/backup"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/autoscale"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

// pass is one reconcile's state, handed from phase to phase.
type pass struct {
	now time.Time

	// observe
	specCM   *corev1.ConfigMap
	spec     *v1alpha1.Cluster
	machines []providers.Machine
	nodes    []*corev1.Node
	led      *ledger
	// location is Velero's storage location as ensureBackups found it, and
	// store the store it points at (nil when unknown); backups are the
	// recorded backups as judged, and veleroGood the gates whose Velero
	// backup is good, for the executor's next step.
	location   struct{ phase, message string }
	store      *backup.Store
	backups    plan.BackupInput
	veleroGood map[string]bool

	// autoscale is the autoscaler's decision, while a pool is autoscaled.
	autoscale *autoscale.Decision

	// plan
	plan plan.Plan

	// act
	drains []v1alpha1.DrainStatus
	// moved: an operation reached a step that can be taken at once, so the
	// next pass should not wait.
	moved bool
	errs  []error
}

// Reconcile runs one pass: observe, plan, act, report (the phases are in
// files of those names). It returns how soon the next pass should run.
//
// A pass advances every recorded operation by at most one step, and every
// step is recorded in the ledger before it is taken, so an agent killed at
// any point resumes the step it recorded.
func (r *Reconciler) Reconcile(ctx context.Context) (time.Duration, error) {
	start := r.opts.Clock.Now()
	defer func() {
		if r.opts.Metrics != nil {
			r.opts.Metrics.reconcileDuration.Observe(r.opts.Clock.Since(start).Seconds())
		}
	}()
	r.mu.Lock()
	defer r.mu.Unlock()

	ps := &pass{now: r.opts.Clock.Now(), veleroGood: map[string]bool{}}
	r.status.Agent, r.status.LastError = r.opts.Identity, ""
	if err := r.observe(ctx, ps); err != nil {
		r.status.LastError = err.Error()
		if werr := r.report(ctx, ps); werr != nil {
			err = errors.Join(err, werr)
		}
		return 0, err
	}
	if ps.spec == nil {
		// Nothing valid to act on yet: report and wait for a fix.
		return r.opts.Resync, r.report(ctx, ps)
	}
	// Before planning: a change gated on a backup is planned from what
	// Velero's location and backups are now.
	r.ensureBackups(ctx, ps)
	autoscaled := r.autoscalePhase(ctx, ps)
	r.planPhase(ctx, ps, autoscaled)
	r.act(ctx, ps)
	r.reportGate(ps)
	if err := r.report(ctx, ps); err != nil {
		ps.errs = append(ps.errs, err)
	}
	if len(ps.errs) > 0 {
		return 0, errors.Join(ps.errs...)
	}
	after := r.opts.Resync
	if ps.autoscale != nil && !ps.autoscale.NextCheck.IsZero() {
		// A timer runs out: the pass then is the one that acts on it.
		after = min(after, max(ps.autoscale.NextCheck.Sub(ps.now), time.Second))
	}
	switch {
	case ps.moved:
		return 0, nil
	case len(ps.led.Entries) > 0:
		return min(r.opts.ProgressInterval, after), nil
	case !ps.plan.Converged:
		return min(after, 5*time.Second), nil
	}
	return after, nil
}

// planPhase asks the pure planner what to do with what was observed,
// recorded operations included.
func (r *Reconciler) planPhase(ctx context.Context, ps *pass, autoscaled map[string]plan.AutoscaledPool) {
	backups := r.observeBackups(ctx, ps)
	ps.plan = plan.Compute(plan.Input{
		Cluster:           ps.spec,
		Machines:          ps.machines,
		Nodes:             planNodes(ps.nodes),
		Self:              r.opts.Self,
		Now:               ps.now,
		OrphanGracePeriod: r.opts.OrphanGracePeriod,
		Operations:        ps.led.operations(),
		Backups:           backups,
		Autoscaled:        autoscaled,
	})
	r.recordPlan(ps.specCM, ps.plan, ps.now)
}

// retryAfter is how long a provider asked the agent to wait, if it did.
func retryAfter(err error) time.Duration {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe.RetryAfter
	}
	return 0
}
