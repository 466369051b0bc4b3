package validate

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/cli"
)

type flagpole struct {
	File           string
	RunningVersion string
}

// NewCommand returns the `seed validate` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a cluster spec without creating anything",
		Long: "Check a cluster spec file the way the agent will: strict decoding, defaults, then validation.\n" +
			"Every problem is listed at once, each naming the field and what would be valid.",
		Example: "  seed validate -f cluster.yaml\n" +
			"  seed validate -f - --running-version v1.34.2 < cluster.yaml",
		Args: cobra.NoArgs,
		// A spec with problems is not a usage mistake; the usage text would
		// bury the list of problems.
		SilenceUsage: true,
		RunE: func(*cobra.Command, []string) error {
			return runE(streams, flags)
		},
	}
	cmd.Flags().StringVarP(&flags.File, "file", "f", "", `the cluster spec to check, YAML or JSON; "-" reads standard input`)
	cmd.Flags().StringVar(&flags.RunningVersion, "running-version", "",
		"the Kubernetes version the cluster runs now (e.g. v1.34.2), to also check that spec.kubernetesVersion is an upgrade kubeadm can make from it")
	// Only fails for a flag that does not exist, and "file" is defined just above.
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func runE(streams cli.IOStreams, flags *flagpole) error {
	data, source, err := cli.ReadSpec(streams.In, flags.File)
	if err != nil {
		return err
	}
	c, err := v1alpha1.Load(data, v1alpha1.ValidateOptions{RunningVersion: flags.RunningVersion})
	var invalid *v1alpha1.InvalidSpecError
	switch {
	case errors.As(err, &invalid):
		fmt.Fprintf(streams.ErrOut, "cluster spec in %s is invalid:\n", source)
		for _, fe := range invalid.Errors {
			fmt.Fprintf(streams.ErrOut, "  %s\n", fe.Error())
		}
		return &invalidFileError{source: source, err: invalid}
	case err != nil:
		// Load refuses only our own options outside the spec.
		return fmt.Errorf("checking %s against --running-version %q: %w", source, flags.RunningVersion, err)
	}
	fmt.Fprintf(streams.Out, "cluster spec %q in %s is valid\n", c.Metadata.Name, source)
	return nil
}

// invalidFileError says the spec has problems. They were printed one per
// line already, so its own message is one line; it wraps the
// *v1alpha1.InvalidSpecError for callers that ask v1alpha1.IsInvalidSpec.
type invalidFileError struct {
	source string
	err    *v1alpha1.InvalidSpecError
}

func (e *invalidFileError) Error() string {
	n := len(e.err.Errors)
	if n == 1 {
		return fmt.Sprintf("cluster spec in %s has 1 problem", e.source)
	}
	return fmt.Sprintf("cluster spec in %s has %d problems", e.source, n)
}

func (e *invalidFileError) Unwrap() error { return e.err }
