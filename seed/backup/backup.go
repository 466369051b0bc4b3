// Package backup is `seed backup`: back the cluster up now, through the
// Velero its agent installs, and say whether the backup is good.
package backup

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
	kubeconfig string
	timeout    time.Duration
}

// NewCommand returns the `seed backup` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "backup [BACKUP]",
		Short: "Back the cluster up now and check the backup",
		Long: `Asks the cluster's Velero (installed by the agent while spec.backup.enabled)
for a backup of every namespace, follows it, and judges it as the agent's
gate does: it succeeds only when the backup is Completed with no errors and
holds every item it counted. A PartiallyFailed or Failed backup, a storage
location Velero finds Unavailable, or a cluster without Velero is an error
saying why. The agent's own state (its ledger, status and Lease) is never in
a backup. BACKUP names it (default <cluster>-manual-<UTC time>); a backup of
that name that exists already is followed and judged, not taken again.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			backup := ""
			if len(args) == 1 {
				backup = args[0]
			}
			return run(cmd.Context(), streams, f, backup)
		},
	}
	cmd.Flags().StringVar(&f.name, "name", "seed", "cluster name")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", cluster.DefaultKubeconfigPath(), "kubeconfig file holding the cluster's context")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up after this long")
	return cmd
}

func run(ctx context.Context, streams cli.IOStreams, f *flags, name string) error {
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
	if name == "" {
		name = cluster.ManualBackupName(f.name, time.Now())
	}
	res, err := b.Take(ctx, name)
	if err != nil {
		return fmt.Errorf("backing up cluster %s: %w", f.name, err)
	}
	fmt.Fprintf(streams.Out, "Backup %s is good: %d items, taken in %s.\nRestore it with: seed restore --name %s --from %s\n",
		res.Name, res.Items, res.Duration.Round(100*time.Millisecond), f.name, res.Name)
	return nil
}
