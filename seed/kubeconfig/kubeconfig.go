// Package kubeconfig is `seed kubeconfig`: print a cluster's admin kubeconfig.
package kubeconfig

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/pkg/cluster"
)

type flags struct {
	file       string
	name       string
	kubeconfig string
}

// NewCommand returns the `seed kubeconfig` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the cluster's admin kubeconfig",
		Long: `Prints the cluster's admin kubeconfig: the context the seed wrote, or, when
that is gone, the credentials kubeadm left on the control-plane machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), streams, f) },
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "cluster spec file (default: a local Docker cluster)")
	cmd.Flags().StringVar(&f.name, "name", "seed", "cluster name when no spec file is given")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", cluster.DefaultKubeconfigPath(), "kubeconfig file to look in first")
	return cmd
}

func run(ctx context.Context, streams cli.IOStreams, f *flags) error {
	spec, _, p, err := cluster.Open(ctx, f.file, f.name, "")
	if err != nil {
		return err
	}
	raw, err := cluster.Kubeconfig(ctx, p, spec.Metadata.Name, f.kubeconfig)
	if err != nil {
		return err
	}
	_, err = streams.Out.Write(raw)
	return err
}
