// Package up is `seed up`: create a cluster's one control-plane machine,
// install the agent and hand the cluster over to it.
package up

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/pkg/cluster"
	"github.com/seedhq/seed/pkg/version"
	"github.com/seedhq/seed/providers/registry"
)

type flags struct {
	file       string
	name       string
	kubeconfig string
	agentImage string
	netImage   string
	timeout    time.Duration
	// restoreFrom is the backup to restore once the cluster is up.
	restoreFrom string
}

// NewCommand returns the `seed up` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create a cluster and hand it to its agent",
		Long: `Creates the cluster's control-plane machine (if it does not exist), bootstraps
Kubernetes on it with kubeadm, installs the agent and the cluster spec, and
waits until the agent has adopted the cluster. Without -f, a local Docker
cluster with one control-plane machine. Running it again changes nothing.

With --restore-from, it then waits for the agent to install Velero and for
Velero to read the backups in the cluster's store (which outlives the
cluster: seed down keeps it), and restores the backup named, or the last
good one with "latest". Objects that exist are left as they are.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), streams, f) },
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "cluster spec file (default: a local Docker cluster)")
	cmd.Flags().StringVar(&f.name, "name", "seed", "cluster name when no spec file is given")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", cluster.DefaultKubeconfigPath(), "kubeconfig file to merge the cluster's context into")
	cmd.Flags().StringVar(&f.agentImage, "agent-image", version.AgentImage, "agent image to install")
	cmd.Flags().StringVar(&f.netImage, "network-image", "", "the pod network image (seednet), staged on providers without a preloaded node image (aws); make images writes its reference to bin/network-image")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up after this long")
	cmd.Flags().StringVar(&f.restoreFrom, "restore-from", "", `once the agent has the cluster, restore this backup (a name, or "latest" for the last good one) from the cluster's store: a cluster rebuilt after seed down. Needs spec.backup.enabled; a cluster restored by it once is not restored again`)
	return cmd
}

func run(ctx context.Context, streams cli.IOStreams, f *flags) error {
	spec, raw, p, err := cluster.Open(ctx, f.file, f.name, f.agentImage)
	if err != nil {
		return err
	}
	opts := cluster.UpOptions{
		Spec: spec, SpecYAML: raw, Provider: p, AgentImage: f.agentImage, NetworkImage: f.netImage,
		KubeconfigPath: f.kubeconfig, Timeout: f.timeout, Progress: streams.ErrOut, RestoreFrom: f.restoreFrom,
		// Images come from the local engine, where `make images` built them
		// (Up skips the agent image when the provider names a registry image).
		ImageSource: registry.LocalImage,
	}
	res, err := cluster.Up(ctx, opts)
	if err != nil {
		return err
	}
	name := spec.Metadata.Name
	if res.Created {
		fmt.Fprintf(streams.Out, "\nCluster %q is up and its agent has taken over.\n", name)
	} else {
		fmt.Fprintf(streams.Out, "\nCluster %q was already up; nothing changed.\n", name)
	}
	if r := res.Restore; r != nil {
		switch {
		case r.Earlier:
			fmt.Fprintf(streams.Out, "It was restored from backup %s before (restore %s); nothing was restored again.\n", r.Backup, r.Name)
		default:
			fmt.Fprintf(streams.Out, "Backup %s is restored into it (restore %s: %d items, %d warnings, in %s).\n",
				r.Backup, r.Name, r.Items, r.Warnings, r.Duration.Round(100*time.Millisecond))
		}
	}
	if res.SpecError != "" {
		fmt.Fprintf(streams.Out, "Its agent rejects the live spec and acts on the last one it accepted (see the warning above).\n")
	}
	fmt.Fprintf(streams.Out, `
Next:
  kubectl --context %[1]s get nodes
  kubectl --context %[1]s -n seed-system edit configmap seed-cluster   # add or resize node pools
  seed status --name %[2]s
`, res.Context, name)
	return nil
}
