package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	_ "time/tzdata" // CronJob time zones, as upstream's apiserver and controller-manager embed it.

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as in upstream mains.
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as in upstream mains.
	_ "k8s.io/component-base/metrics/prometheus/version"  // build-info metric, as in upstream mains.
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubeadm "k8s.io/kubernetes/cmd/kubeadm/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins.
)

// selfName is the name under which the binary takes the component from its
// first argument instead of from its own name.
const selfName = "kube"

// Exit codes of the dispatcher itself; components choose their own.
const (
	exitUsage = 2
	// exitPreflight matches kubeadm's code for failed preflight checks, so
	// scripts that branch on it keep working.
	exitPreflight = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stderr))
}

// run dispatches to the component named by args and returns its exit code.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	components := map[string]func(context.Context) int{
		"kube-apiserver":          func(context.Context) int { return cli.Run(apiserver.NewAPIServerCommand()) },
		"kube-controller-manager": func(context.Context) int { return cli.Run(controllermanager.NewControllerManagerCommand()) },
		"kube-scheduler":          func(context.Context) int { return cli.Run(scheduler.NewSchedulerCommand()) },
		"kube-proxy":              func(context.Context) int { return cli.Run(proxy.NewProxyCommand()) },
		"kubelet":                 func(ctx context.Context) int { return cli.Run(newKubeletCommand(ctx)) },
		"kubeadm":                 runKubeadm,
		"kubectl":                 runKubectl,
	}

	name, rest := filepath.Base(args[0]), args[1:]
	if _, ok := components[name]; !ok && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	component, ok := components[name]
	if !ok {
		usage(stderr, components)
		return exitUsage
	}
	// Every component parses os.Args itself (cobra, and kubectl's plugin
	// lookup), so it must look as if the component had been run directly.
	os.Args = append([]string{name}, rest...)
	return component(ctx)
}

// newKubeletCommand copes with NewKubeletCommand taking a context since
// Kubernetes 1.34 and none before, so one source builds every version
// hack/build-kube.sh supports.
func newKubeletCommand(ctx context.Context) *cobra.Command {
	switch newCommand := any(kubelet.NewKubeletCommand).(type) {
	case func(context.Context) *cobra.Command:
		return newCommand(ctx)
	case func() *cobra.Command:
		return newCommand()
	default:
		panic(fmt.Sprintf("unsupported kubelet.NewKubeletCommand signature %T", newCommand))
	}
}

// runKubeadm runs kubeadm and reports its error the way kubeadm does. Its
// own error helper moved package between releases, so it is redone here.
func runKubeadm(context.Context) int {
	err := kubeadm.Run()
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "error: %v\nTo see the stack trace of this error execute with --v=5 or higher\n", err)
	if p, ok := err.(interface{ Preflight() bool }); ok && p.Preflight() {
		return exitPreflight
	}
	return 1
}

// runKubectl runs kubectl the way its upstream main does, minus the early
// verbosity parsing that only newer releases offer.
func runKubectl(context.Context) int {
	if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
		// CheckErr prints the error the kubectl way and exits.
		kubectlutil.CheckErr(err)
	}
	return 0
}

func usage(w io.Writer, components map[string]func(context.Context) int) {
	names := make([]string, 0, len(components))
	for name := range components {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "usage: %s COMPONENT [ARGS...], or call it through a link named COMPONENT\ncomponents:\n", selfName)
	for _, name := range names {
		fmt.Fprintf(w, "  %s\n", name)
	}
}
