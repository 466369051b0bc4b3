package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/seedhq/seed/pkg/plan"
)

// observe reads everything the planner decides from: the spec in force, the
// provider's machines, the Nodes (from cache) and the ledger. With no valid
// spec yet it stops after the spec, leaving ps.spec nil.
func (r *Reconciler) observe(ctx context.Context, ps *pass) error {
	r.runningVersion = r.oldestAPIServer()
	if r.runningVersion == "" {
		if v, err := r.opts.Client.Discovery().ServerVersion(); err == nil {
			r.runningVersion = v.GitVersion
		}
	}
	r.status.KubernetesVersion = r.runningVersion
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

// oldestAPIServer is the oldest kubelet version among control-plane Nodes:
// each runs its API server at its own version, and during a replacement
// the Service VIP answers from either, so asking the API server for its
// version would flip between them. "" when no such Node is known.
func (r *Reconciler) oldestAPIServer() string {
	if r.nodes == nil {
		return ""
	}
	sel := labels.SelectorFromSet(labels.Set{controlPlaneLabel: ""})
	nodes, err := r.nodes.List(sel)
	if err != nil {
		return ""
	}
	oldest := ""
	for _, n := range nodes {
		if v := n.Status.NodeInfo.KubeletVersion; v != "" && (oldest == "" || plan.VersionNewer(oldest, v)) {
			oldest = v
		}
	}
	return oldest
}
