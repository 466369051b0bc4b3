// Package status is `seed status`: show what the agent reports.
package status

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/pkg/cluster"
)

type flags struct {
	name       string
	kubeconfig string
	output     string
	watch      bool
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
	cmd.Flags().BoolVarP(&f.watch, "watch", "w", false, "keep following the report, printing it again each time it changes, until interrupted")
	return cmd
}

func run(ctx context.Context, streams cli.IOStreams, f *flags) error {
	cfg, err := cluster.ClientConfig(f.kubeconfig, f.name)
	if err != nil {
		return err
	}
	if f.watch {
		first := true
		return cluster.WatchStatus(ctx, cfg, time.Second, func(st *v1alpha1.ClusterStatus) error {
			if !first {
				// YAML reads as a stream of documents, JSON as a stream
				// of values; a table gets the time it changed.
				switch f.output {
				case "yaml":
					fmt.Fprintln(streams.Out, "---")
				case "json":
				default:
					fmt.Fprintf(streams.Out, "\n--- %s\n", time.Now().Format("15:04:05"))
				}
			}
			first = false
			return cluster.PrintStatus(streams.Out, st, f.output)
		}, func(err error) {
			fmt.Fprintf(streams.ErrOut, "%s: %v (trying again)\n", time.Now().Format("15:04:05"), err)
		})
	}
	st, err := cluster.GetStatus(ctx, cfg)
	if err != nil {
		return err
	}
	return cluster.PrintStatus(streams.Out, st, f.output)
}
