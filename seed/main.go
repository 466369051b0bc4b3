// Command seed creates a cluster, hands it to its agent, and exits.
package main

import (
	"fmt"
	"os"

	"github.com/seedhq/seed/seed/app"
)

func main() {
	if err := app.Main(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
