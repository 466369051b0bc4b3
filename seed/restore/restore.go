// Package restore is `seed restore`: restore a backup into the cluster
// through the Velero its agent installs.
package restore

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/pkg/cluster"
)

type flags struct {
	name       string
	from       string
	kubeconfig string
	timeout    time.Duration
}

// NewCommand returns the `seed restore` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a backup into the cluster",
		Long: `Restores a backup Velero knows (one taken in this cluster, or one in the
store that Velero has read) into the cluster, and follows the restore to its
end. --from names the backup; "latest", the default, is the good backup that
completed last, however old. Only a good backup is restored (Completed, no
errors, every item). Objects that exist are left as they are, so restore
into a cluster what it lost: a deleted namespace comes back whole. Velero's
own namespace, Leases and certificate signing requests are not restored, and
the agent's ledger, status and Lease are never in a backup. A restore that
ends PartiallyFailed or Failed is an error with Velero's reason. The
restore is named <backup>-<UTC time>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), streams, f) },
	}
	cmd.Flags().StringVar(&f.name, "name", "seed", "cluster name")
	cmd.Flags().StringVar(&f.from, "from", cluster.LatestBackup, `the backup to restore, or "latest" for the good one that completed last`)
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", cluster.DefaultKubeconfigPath(), "kubeconfig file holding the cluster's context")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up after this long")
	return cmd
}

func run(ctx context.Context, streams cli.IOStreams, f *flags) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cfg, err := cluster.ClientConfig(f.kubeconfig, f.name)
	if err != nil {
		return err
	}
	b, err := cluster.NewBackups(cfg, streams.ErrOut)
	if err != nil {
		return err
	}
	res, err := b.Restore(ctx, f.from, "")
	if err != nil {
		return fmt.Errorf("restoring cluster %s: %w", f.name, err)
	}
	fmt.Fprintf(streams.Out, "Backup %s is restored (restore %s: %d items, %d warnings, in %s).\n",
		res.Backup, res.Name, res.Items, res.Warnings, res.Duration.Round(100*time.Millisecond))
	if res.Warnings > 0 {
		fmt.Fprintf(streams.Out, "Warnings are mostly objects that existed already and were left as they are.\n")
	}
	return nil
}
