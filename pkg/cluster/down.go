package cluster

import (
	"context"
	"fmt"
	"io"

	"github.com/seedhq/seed/providers"
)

// Down removes everything the cluster owns, found by its provider's
// ownership labels or tags, even when its API server is dead, and removes
// its context from the kubeconfig.
func Down(ctx context.Context, p providers.Provider, cluster, kubeconfigPath string, out io.Writer) error {
	pr := newProgress(out)
	machines, err := p.ListMachines(ctx)
	if err != nil {
		return fmt.Errorf("listing the cluster's machines: %w", err)
	}
	s := pr.start("Deleting cluster %q: %d machines and everything labelled with it", cluster, len(machines))
	if err := p.DestroyInfrastructure(ctx); err != nil {
		return s.fail(fmt.Errorf("deleting cluster %s: %w", cluster, err))
	}
	s.done()
	if kubeconfigPath != "" {
		if err := RemoveFromKubeconfig(kubeconfigPath, cluster); err != nil {
			return err
		}
	}
	return nil
}
