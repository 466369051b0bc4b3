// Command agent runs inside the cluster it manages and keeps the cluster's
// machines in line with the spec in its ConfigMap.
package main

import (
	"fmt"
	"os"

	"github.com/seedhq/seed/agent/app"
)

func main() {
	if err := app.Main(); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}
