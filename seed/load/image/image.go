// Package image is `seed load image`: copy images from the local Docker
// engine into every machine, and record them for the machines to come.
package image

import (
	"context"
	"errors"
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
	list       bool
	forget     string
	timeout    time.Duration
}

// NewCommand returns the `seed load image` command.
func NewCommand(streams cli.IOStreams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "image IMAGE...",
		Short: "Copy images from the local Docker engine into every machine, now and later",
		Long: `Copies each image from the local Docker engine into the containerd of every
running machine (namespace k8s.io, so pods find it with imagePullPolicy
Never or IfNotPresent), then records it in ConfigMap ` + v1alpha1.DefaultNamespace + "/" + v1alpha1.ImagesConfigMap + `: the agent
gives every recorded image to each machine it creates later (healing,
scaling, upgrades), so a workload using it survives the replacement of its
node. Nothing is copied unless every image is a valid reference the local
engine has. Docker provider only.`,
		Example: "  docker build -t example.com/app:v1 . && seed load image example.com/app:v1\n" +
			"  seed load image --list\n" +
			"  seed load image --forget example.com/app:v1",
		RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), streams, f, args) },
	}
	cmd.Flags().StringVar(&f.name, "name", "seed", "cluster name")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", cluster.DefaultKubeconfigPath(), "kubeconfig file holding the cluster's context")
	cmd.Flags().BoolVar(&f.list, "list", false, "print the recorded images and exit")
	cmd.Flags().StringVar(&f.forget, "forget", "", "remove IMAGE from the record: machines created from now on do not get it (those that have it keep it)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for each machine to import the images")
	return cmd
}

func run(ctx context.Context, streams cli.IOStreams, f *flags, args []string) error {
	switch {
	case f.list && f.forget != "":
		return errors.New("--list and --forget do not go together")
	case (f.list || f.forget != "") && len(args) > 0:
		return errors.New("--list and --forget take no image arguments")
	}
	if !f.list && f.forget == "" {
		// Bad references fail before anything is read or asked.
		if _, err := cluster.ParseImageRefs(args); err != nil {
			return err
		}
	}
	cfg, err := cluster.ClientConfig(f.kubeconfig, f.name)
	if err != nil {
		return err
	}
	switch {
	case f.list:
		refs, err := cluster.LoadedImages(ctx, cfg)
		if err != nil {
			return err
		}
		for _, r := range refs {
			fmt.Fprintln(streams.Out, r)
		}
		return nil
	case f.forget != "":
		found, err := cluster.ForgetImage(ctx, cfg, f.forget)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%s is not recorded (seed load image --list)", f.forget)
		}
		fmt.Fprintf(streams.Out, "Forgot %s: machines created from now on do not get it; the machines that have it keep it until they are replaced.\n", f.forget)
		return nil
	}
	_, p, err := cluster.OpenLive(ctx, cfg)
	if err != nil {
		return err
	}
	if err := cluster.LoadImages(ctx, cluster.LoadImagesOptions{
		Config: cfg, Provider: p, Engine: cluster.LocalDockerEngine(), Refs: args, Timeout: f.timeout, Out: streams.ErrOut,
	}); err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "Loaded %d image(s) into cluster %q; the agent gives them to every machine it creates.\n", len(args), f.name)
	return nil
}
