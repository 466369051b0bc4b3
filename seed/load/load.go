// Package load is `seed load`: put things from the host into a running
// cluster's machines.
package load

import (
	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/seed/load/image"
)

// NewCommand returns the `seed load` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Load images from the host into the cluster's machines",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(image.NewCommand(streams))
	return cmd
}
