// Package status is `seed status`: show what the agent reports.
package status

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/pkg/cluster"
)

type flags struct {
	name       string
	kubeconfig string
	output     string
}

// NewCommand returns the `seed status` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the agent's report: pools, machines, conditions and the current plan",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), streams, f) },
	}
	cmd.Flags().StringVar(&f.name, "name", "seed", "cluster name")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", cluster.DefaultKubeconfigPath(), "kubeconfig file holding the cluster's context")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table, yaml or json")
	return cmd
}

func run(ctx context.Context, streams cli.IOStreams, f *flags) error {
	cfg, err := cluster.ClientConfig(f.kubeconfig, f.name)
	if err != nil {
		return err
	}
	st, err := cluster.GetStatus(ctx, cfg)
	if err != nil {
		return err
	}
	return cluster.PrintStatus(streams.Out, st, f.output)
}
