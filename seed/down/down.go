// Package down is `seed down`: remove everything a cluster owns.
package down

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/pkg/cluster"
)

type flags struct {
	file       string
	name       string
	kubeconfig string
	// deleteBackups also deletes the backups the provider keeps.
	deleteBackups bool
}

// NewCommand returns the `seed down` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Delete a cluster and everything it owns",
		Long: `Deletes every machine, network and volume labelled as the cluster's, found
through the provider even when the cluster's API server is dead, and removes
the cluster's kubeconfig context. Deleting a cluster that does not exist succeeds.
The provider's backup store (Docker: a versitygw container and its directory
under ~/.local/share/seed/backups) and its backups stay, so that a cluster made
again under the same name finds them, unless --delete-backups is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), streams, f) },
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "cluster spec file (it says the provider; default: a local Docker cluster)")
	cmd.Flags().StringVar(&f.name, "name", "seed", "cluster name when no spec file is given")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", cluster.DefaultKubeconfigPath(), "kubeconfig file to remove the cluster's context from")
	cmd.Flags().BoolVar(&f.deleteBackups, "delete-backups", false, "also delete the cluster's backup store and every backup in it")
	return cmd
}

func run(ctx context.Context, streams cli.IOStreams, f *flags) error {
	spec, _, p, err := cluster.Open(ctx, f.file, f.name, "")
	if err != nil {
		return err
	}
	if err := cluster.Down(ctx, p, spec.Metadata.Name, cluster.DownOptions{
		KubeconfigPath: f.kubeconfig, DeleteBackups: f.deleteBackups, Progress: streams.ErrOut,
	}); err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "Cluster %q deleted.\n", spec.Metadata.Name)
	return nil
}
