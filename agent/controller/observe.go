package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
)

// observe reads everything the planner decides from: the spec in force, the
// provider's machines, the Nodes (from cache) and the ledger. With no valid
// spec yet it stops after the spec, leaving ps.spec nil.
func (r *Reconciler) observe(ctx context.Context, ps *pass) error {
	if v, err := r.opts.Client.Discovery().ServerVersion(); err == nil {
		r.runningVersion = v.GitVersion
		r.status.KubernetesVersion = v.GitVersion
	}
	ps.specCM, ps.spec = r.currentSpec(ctx, ps.now)
	if ps.spec == nil {
		return nil
	}
	if r.provider == nil {
		p, err := r.opts.NewProvider(ctx, ps.spec)
		if err != nil {
			return fmt.Errorf("setting up the provider: %w", err)
		}
		r.provider = p
		r.opts.Logger.Info("Provider ready", "provider", p.Name())
	}
	machines, err := r.provider.ListMachines(ctx)
	if err != nil {
		return fmt.Errorf("listing machines: %w", err)
	}
	nodes, err := r.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes from cache: %w", err)
	}
	led, err := r.ledger.load(ctx)
	if err != nil {
		return err
	}
	ps.machines, ps.nodes, ps.led = machines, nodes, led
	return nil
}
