// Package plan is `seed plan`: what the agent would do with a spec, before
// it is applied.
package plan

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/cli"
	"github.com/seedhq/seed/pkg/cluster"
)

type flags struct {
	file       string
	name       string
	kubeconfig string
	output     string
}

// NewCommand returns the `seed plan` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Show what the agent would do if the spec were applied now, changing nothing",
		Long: `Checks the spec against the running cluster as the agent will (version skew
against the oldest control plane, fields that cannot change from the spec the
agent applied), then runs the agent's planner over what the cluster looks like
now (the provider's machines, the Nodes, the agent's ledger) and prints each
action with its reason, and what is blocked and why. Nothing is changed:
apply the spec with kubectl edit/apply on ConfigMap ` + v1alpha1.DefaultNamespace + "/" + v1alpha1.SpecConfigMap + `.`,
		Example: "  seed plan -f cluster.yaml\n  seed plan -f cluster.yaml -o yaml",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), streams, f) },
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", `the proposed cluster spec, YAML or JSON; "-" reads standard input`)
	cmd.Flags().StringVar(&f.name, "name", "", "cluster name (default: the spec's metadata.name)")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", cluster.DefaultKubeconfigPath(), "kubeconfig file holding the cluster's context")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table, yaml or json")
	// Only fails for a flag that does not exist.
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func run(ctx context.Context, streams cli.IOStreams, f *flags) error {
	switch f.output {
	case "", "table", "yaml", "json":
	default:
		return fmt.Errorf("unknown output format %q: use table, yaml or json", f.output)
	}
	data, source, err := cli.ReadSpec(streams.In, f.file)
	if err != nil {
		return err
	}
	name := f.name
	var pv *cluster.Preview
	if name == "" {
		// The name says which cluster; a spec that does not decode is
		// reported below as the agent would report it.
		if c, derr := v1alpha1.Decode(data); derr != nil {
			err = derr
		} else {
			name = c.Metadata.Name
		}
	}
	if err == nil {
		cfg, cerr := cluster.ClientConfig(f.kubeconfig, name)
		if cerr != nil {
			return cerr
		}
		pv, err = cluster.PlanSpec(ctx, cluster.PlanOptions{Config: cfg, Spec: data})
	}
	var invalid *v1alpha1.InvalidSpecError
	if errors.As(err, &invalid) {
		fmt.Fprintf(streams.ErrOut, "the agent would reject the cluster spec in %s:\n", source)
		for _, fe := range invalid.Errors {
			fmt.Fprintf(streams.ErrOut, "  %s\n", fe.Error())
		}
		return fmt.Errorf("cluster spec in %s is invalid for cluster %q: nothing would be done", source, name)
	}
	if err != nil {
		return err
	}
	return cluster.PrintPreview(streams.Out, pv, f.output)
}
