// Command lb stands in for the agent binary in the Docker provider's
// real-engine test: the load balancer image's entrypoint, run as
// `agent lb ...` is, serving package lb and nothing else.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/seedhq/seed/agent/lb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if len(os.Args) < 2 || os.Args[1] != "lb" {
		fmt.Fprintln(os.Stderr, "usage: agent lb [flags]")
		os.Exit(2)
	}
	if err := lb.Run(ctx, os.Args[2:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "agent lb:", err)
		os.Exit(1)
	}
}
