package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

// recordedStep is one operation's next step as written to the ledger.
type recordedStep struct {
	Machine string
	Op      plan.OperationType
	Step    plan.Step
}

// act carries out the plan. First every decision is recorded in the ledger
// (new operations, steps the planner moved, operations it ended), in one
// write that fails on a conflict if another agent wrote in between; then
// every operation takes its next step; then the steps reached are recorded.
// The executor decides nothing: what to do, and when to stop waiting, is the
// planner's.
func (r *Reconciler) act(ctx context.Context, ps *pass) {
	if ps.spec.Spec.Paused {
		return // the plan is empty too; recorded operations wait
	}
	led := ps.led
	for _, a := range ps.plan.Actions {
		switch a.Type {
		case plan.Create:
			ms := *a.Create
			ms.Name = r.newMachineName(ps.spec.Metadata.Name, ms.Pool, led, ps.machines)
			led.Entries[ms.Name] = &ledgerEntry{Op: plan.OpCreate, Step: plan.StepCreate, Pool: ms.Pool, Role: string(ms.Role),
				MachineType: ms.MachineType, KubernetesVersion: ms.KubernetesVersion, Reason: a.Reason, RecordedAt: ps.now}
			r.noteTrigger(ps, ms.Pool, ms.Name)
			r.opts.Logger.Info("Creating machine", "machine", ms.Name, "pool", ms.Pool, "reason", a.Reason)
			r.event(ps.specCM, corev1.EventTypeNormal, "CreatingMachine", "Creating machine %s in pool %s: %s", ms.Name, ms.Pool, a.Reason)
		case plan.ReplaceControlPlane:
			ms := *a.Create
			ms.Name = r.newMachineName(ps.spec.Metadata.Name, ms.Pool, led, ps.machines)
			started := ps.now
			led.Entries[ms.Name] = &ledgerEntry{Op: plan.OpReplaceControlPlane, Step: plan.StepPrepare, Pool: ms.Pool, Role: string(ms.Role),
				MachineType: ms.MachineType, KubernetesVersion: ms.KubernetesVersion, Replaces: a.Machine, ReplacesVersion: replacedVersion(ps.machines, a.Machine), Reason: a.Reason,
				RecordedAt: ps.now, StepStartedAt: &started}
			r.opts.Logger.Info("Replacing the control plane", "old", a.Machine, "new", ms.Name, "version", ms.KubernetesVersion, "reason", a.Reason)
			r.event(ps.specCM, corev1.EventTypeNormal, "ReplacingControlPlane", "Replacing control-plane machine %s by %s (Kubernetes %s): %s",
				a.Machine, ms.Name, ms.KubernetesVersion, a.Reason)
		case plan.Delete:
			if e, ok := led.Entries[a.Machine]; ok && e.Op == plan.OpDelete {
				continue
			}
			// A creation under way is superseded: one operation per machine.
			started := ps.now
			led.Entries[a.Machine] = &ledgerEntry{Op: plan.OpDelete, Step: plan.StepDrain, Pool: a.Pool, Reason: a.Reason,
				RecordedAt: ps.now, DrainStartedAt: &started, Voluntary: a.Voluntary}
			r.opts.Logger.Info("Deleting machine", "machine", a.Machine, "pool", a.Pool, "reason", a.Reason)
			r.event(ps.specCM, corev1.EventTypeNormal, "DeletingMachine", "Draining and deleting machine %s: %s", a.Machine, a.Reason)
		case plan.GiveUp:
			// The name is deleted too, in case the machine shows up late: a
			// deletion with nothing to drain.
			led.Entries[a.Machine] = &ledgerEntry{Op: plan.OpDelete, Step: plan.StepDeleteMachine, Pool: a.Pool, Reason: a.Reason, RecordedAt: ps.now}
			r.opts.Logger.Info("Giving up creating machine", "machine", a.Machine, "reason", a.Reason)
			r.event(ps.specCM, corev1.EventTypeWarning, "CreateAbandoned", "Giving up on machine %s: %s", a.Machine, a.Reason)
		case plan.SkipDrain:
			left, by := 0, "nothing"
			if e, ok := led.Entries[a.Machine]; ok && e.Op == plan.OpDelete {
				e.Step = plan.StepDeleteMachine
				left = e.PodsLeft
				if len(e.BlockedBy) > 0 {
					by = "PodDisruptionBudget " + strings.Join(e.BlockedBy, ", ")
				}
			}
			delete(r.lastBlocked, "drain/"+a.Machine)
			r.opts.Logger.Info("Drain timed out; deleting machine anyway", "machine", a.Machine, "podsLeft", left, "blockedBy", by, "reason", a.Reason)
			r.event(ps.specCM, corev1.EventTypeWarning, "DrainTimedOut", "%s (%d pods left, blocked by %s)", a.Reason, left, by)
		case plan.Cancel:
			delete(led.Entries, a.Machine)
			r.opts.Logger.Info("Cancelling recorded operation", "machine", a.Machine, "reason", a.Reason)
		case plan.CancelDrain:
			// Uncordoned first: should the ledger write fail, the next
			// pass cancels again, and an uncordoned node is harmless.
			if err := r.uncordon(ctx, a.Machine); err != nil {
				ps.errs = append(ps.errs, err)
				continue
			}
			delete(led.Entries, a.Machine)
			delete(r.lastBlocked, "drain/"+a.Machine)
			r.opts.Logger.Info("Cancelling the autoscaler's drain; machine kept", "machine", a.Machine, "reason", a.Reason)
			r.event(ps.specCM, corev1.EventTypeWarning, "ScaleDownCancelled", "%s", a.Reason)
		}
	}
	r.recordBackupDecisions(ps)
	if !r.saveLedger(ctx, ps) {
		return
	}

	r.advanceBackups(ctx, ps)
	r.advanceCreates(ctx, ps)
	r.advanceDeletes(ctx, ps)
	r.advanceReplacements(ctx, ps)
	for _, a := range ps.plan.Actions {
		if a.Type == plan.DeleteNode {
			r.opts.Logger.Info("Deleting node", "node", a.Machine, "reason", a.Reason)
			err := r.opts.Client.CoreV1().Nodes().Delete(ctx, a.Machine, metav1.DeleteOptions{})
			r.countAction("DeleteNode", err)
			if err != nil && !apierrors.IsNotFound(err) {
				ps.errs = append(ps.errs, fmt.Errorf("deleting node %s: %w", a.Machine, err))
			}
		}
	}
	r.saveLedger(ctx, ps)
	if ps.plan.Converged && len(ps.led.Entries) == 0 {
		r.upgradeAddons(ctx, ps)
	}
}

// saveLedger writes the ledger if it changed and tells the test hook what
// was recorded. A conflict means another agent wrote in between: this pass
// stops acting, and the next starts over from what is stored.
func (r *Reconciler) saveLedger(ctx context.Context, ps *pass) bool {
	before := ps.led.resourceVersion
	if err := r.ledger.save(ctx, ps.led); err != nil {
		ps.errs = append(ps.errs, err)
		return false
	}
	if r.stepRecorded != nil && ps.led.resourceVersion != before {
		var rec []recordedStep
		for _, name := range sortedKeys(ps.led.Entries) {
			e := ps.led.Entries[name]
			rec = append(rec, recordedStep{Machine: name, Op: e.Op, Step: e.NextStep()})
		}
		r.stepRecorded(ctx, rec)
	}
	return true
}

// advanceCreates takes the one step of every recorded creation: render the
// machine's bootstrap (its own join token) and ask the provider for all of
// them in one call, which each provider batches as it can. Asking again for a machine that exists is how a
// half-made one is finished. A creation's entry goes when a call for it
// returns; one that can never succeed (invalid, or no capacity) goes too,
// and the planner asks for a fresh machine if one is still needed.
func (r *Reconciler) advanceCreates(ctx context.Context, ps *pass) {
	var specs []providers.MachineSpec
	var entries []*ledgerEntry
	for _, name := range sortedKeys(ps.led.Entries) {
		if e := ps.led.Entries[name]; e.Op == plan.OpCreate {
			specs = append(specs, e.MachineSpec(name))
			entries = append(entries, e)
		}
	}
	if len(specs) == 0 {
		return
	}
	// Images the new machines may lack (the cluster's add-ons at another
	// version than their node image's): a provider that ships images
	// gives them those.
	images, err := r.clusterImages(ctx)
	if err != nil {
		ps.errs = append(ps.errs, err)
		return
	}
	for i := range specs {
		specs[i].Images = imagesFor(images, ps.spec, specs[i].Role)
	}
	errs := make([]error, len(specs))
	parallel(len(specs), func(i int) {
		b, err := r.opts.Bootstrapper.Bootstrap(ctx, ps.spec, specs[i])
		if err != nil {
			// Rendering a join needs the API server (a token); it is worth
			// retrying unless it says otherwise.
			if providers.KindOf(err) == "" {
				err = providers.NewError(providers.KindTransient, "rendering bootstrap for machine "+specs[i].Name, err)
			}
			errs[i] = err
			return
		}
		specs[i].Bootstrap = b
	})
	var ready []int
	for i, err := range errs {
		if err == nil {
			ready = append(ready, i)
		}
	}
	if len(ready) > 0 {
		batch := make([]providers.MachineSpec, len(ready))
		for k, i := range ready {
			batch[k] = specs[i]
		}
		made, err := r.provider.CreateMachines(ctx, batch)
		for _, spec := range batch {
			r.observeScaleUpLatency(spec.Name, r.opts.Clock.Now())
		}
		if err != nil {
			// The machines the provider says exist were made; the error is
			// about the rest alone.
			exists := make(map[string]bool, len(made))
			for _, m := range made {
				exists[m.Name] = true
			}
			for _, i := range ready {
				if !exists[specs[i].Name] {
					errs[i] = fmt.Errorf("creating machine %s: %w", specs[i].Name, err)
				}
			}
		}
	}
	for i, err := range errs {
		name := specs[i].Name
		r.countAction("Create", err)
		// Only this creation's own entry is touched: the planner may have
		// replaced it with a deletion meanwhile.
		own := ps.led.Entries[name] == entries[i]
		if err == nil {
			delete(r.failures, name)
			if own {
				delete(ps.led.Entries, name)
			}
			continue
		}
		r.failures[name] = err.Error()
		if own {
			if providers.IsInvalid(err) || providers.IsCapacity(err) {
				delete(ps.led.Entries, name)
			} else {
				entries[i].LastError = err.Error()
			}
		}
		r.event(ps.specCM, corev1.EventTypeWarning, "CreateFailed", "%v", err)
		ps.errs = append(ps.errs, err)
	}
}

// advanceDeletes moves every recorded deletion one step: drain (until the
// node is empty, or the planner says the drain has run too long), delete
// the machine, delete its Node.
func (r *Reconciler) advanceDeletes(ctx context.Context, ps *pass) {
	timeout := ps.spec.Spec.Rollout.DrainTimeout.Duration
	for _, name := range sortedKeys(ps.led.Entries) {
		e := ps.led.Entries[name]
		if e.Op != plan.OpDelete {
			continue
		}
		var err error
		switch e.NextStep() {
		case plan.StepDrain:
			err = r.drainStep(ctx, ps, name, e, timeout)
		case plan.StepDeleteMachine:
			err = r.provider.DeleteMachine(ctx, name)
			r.countAction("Delete", err)
			if err == nil {
				e.Step, ps.moved = plan.StepDeleteNode, true
			} else {
				err = fmt.Errorf("deleting machine %s: %w", name, err)
			}
		case plan.StepDeleteNode:
			err = r.opts.Client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
			if err == nil || apierrors.IsNotFound(err) {
				err = nil
				delete(ps.led.Entries, name)
				delete(r.failures, name)
				r.opts.Logger.Info("Deleted machine", "machine", name, "reason", e.Reason)
				r.event(ps.specCM, corev1.EventTypeNormal, "DeletedMachine", "Deleted machine %s", name)
			} else {
				err = fmt.Errorf("deleting node %s: %w", name, err)
			}
		}
		if err != nil {
			e.LastError, r.failures[name] = err.Error(), err.Error()
			ps.errs = append(ps.errs, err)
		}
	}
}

func (r *Reconciler) drainStep(ctx context.Context, ps *pass, name string, e *ledgerEntry, timeout time.Duration) error {
	progress, err := r.drainer.Step(ctx, name)
	if err != nil {
		return err
	}
	e.PodsLeft, e.BlockedBy = progress.PodsLeft, progress.BlockedBy
	if progress.Done {
		delete(r.lastBlocked, "drain/"+name)
		e.Step, ps.moved = plan.StepDeleteMachine, true
		return nil
	}
	started := e.RecordedAt
	if e.DrainStartedAt != nil {
		started = *e.DrainStartedAt
	}
	ps.drains = append(ps.drains, v1alpha1.DrainStatus{Machine: name, StartedAt: started,
		BlockedBy: progress.BlockedBy, PodsLeft: progress.PodsLeft})
	if len(progress.BlockedBy) > 0 && !e.Voluntary {
		r.blocked(ps.specCM, "drain/"+name, "DrainBlocked",
			fmt.Sprintf("Drain of machine %s is blocked by PodDisruptionBudget %s (%d pods left); after drainTimeout %s the machine is deleted anyway",
				name, strings.Join(progress.BlockedBy, ", "), progress.PodsLeft, timeout))
	}
	return nil
}

// parallel runs f(0..n-1) with at most 8 at a time and waits for all.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// replacedVersion is the Kubernetes version machine name runs, as listed.
func replacedVersion(machines []providers.Machine, name string) string {
	for _, m := range machines {
		if m.Name == name {
			return m.KubernetesVersion
		}
	}
	return ""
}

// uncordon makes a Node schedulable again after the autoscaler gave up on
// removing it. A Node already gone or schedulable needs nothing.
func (r *Reconciler) uncordon(ctx context.Context, name string) error {
	patch := []byte(`{"spec":{"unschedulable":null}}`)
	_, err := r.opts.Client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	r.countAction("Uncordon", err)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("uncordoning node %s: %w", name, err)
	}
	return nil
}
