package cluster

import (
	"context"
	"fmt"
	"io"

	"github.com/seedhq/seed/providers"
)

// DownOptions configure Down.
type DownOptions struct {
	// KubeconfigPath is the kubeconfig file to remove the cluster's context
	// from; empty leaves every kubeconfig alone.
	KubeconfigPath string
	// DeleteBackups also deletes the provider's backup store and every
	// backup in it, which otherwise outlive the cluster.
	DeleteBackups bool
	// Progress receives one line per step.
	Progress io.Writer
}

// Down removes everything the cluster owns, found by its provider's
// ownership labels or tags, even when its API server is dead, and removes
// its context from the kubeconfig. The provider's backup store stays, so a
// cluster made again can restore from it, unless DeleteBackups.
func Down(ctx context.Context, p providers.Provider, cluster string, o DownOptions) error {
	pr := newProgress(o.Progress)
	machines, err := p.ListMachines(ctx)
	if err != nil {
		return fmt.Errorf("listing the cluster's machines: %w", err)
	}
	s := pr.start("Deleting cluster %q: %d machines and everything labelled with it", cluster, len(machines))
	if err := p.DestroyInfrastructure(ctx); err != nil {
		return s.fail(fmt.Errorf("deleting cluster %s: %w", cluster, err))
	}
	s.done()
	if p.Capabilities().KeepsBackupStore {
		if o.DeleteBackups {
			s := pr.start("Deleting the backup store of cluster %q and every backup in it", cluster)
			if err := p.DeleteBackupStore(ctx); err != nil {
				return s.fail(fmt.Errorf("deleting the backups of cluster %s: %w", cluster, err))
			}
			s.done()
		} else {
			pr.note("Backups of cluster %q, if any, are kept for a cluster made again under that name (--delete-backups deletes them)", cluster)
		}
	}
	if o.KubeconfigPath != "" {
		if err := RemoveFromKubeconfig(o.KubeconfigPath, cluster); err != nil {
			return err
		}
	}
	return nil
}
