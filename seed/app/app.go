// Package app is the seed's root command. main calls Main; tests call Run
// with their own streams.
package app

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/pkg/version"
	"github.com/seedhq/seed/seed/backup"
	"github.com/seedhq/seed/seed/down"
	"github.com/seedhq/seed/seed/kubeconfig"
	"github.com/seedhq/seed/seed/load"
	"github.com/seedhq/seed/seed/plan"
	"github.com/seedhq/seed/seed/restore"
	"github.com/seedhq/seed/seed/status"
	"github.com/seedhq/seed/seed/up"
	"github.com/seedhq/seed/seed/validate"
)

// Main runs the seed with the process's arguments and streams.
func Main() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], cli.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
}

// Run runs one seed command.
func Run(ctx context.Context, args []string, streams cli.IOStreams) error {
	root := &cobra.Command{
		Use:   "seed",
		Short: "Create a Kubernetes cluster that manages its own machines",
		Long: `seed creates a single-node Kubernetes cluster, installs the Seed agent in it
and hands the cluster over: from then on the agent builds, heals and scales
the cluster's machines from the spec in its ConfigMap.`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.AddCommand(
		up.NewCommand(streams),
		down.NewCommand(streams),
		status.NewCommand(streams),
		kubeconfig.NewCommand(streams),
		validate.NewCommand(streams),
		load.NewCommand(streams),
		plan.NewCommand(streams),
		backup.NewCommand(streams),
		restore.NewCommand(streams),
	)
	return root.ExecuteContext(ctx)
}
