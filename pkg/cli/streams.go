// Package cli holds what every seed verb shares: the I/O streams a command
// writes to, so that tests can capture them.
package cli

import "io"

// IOStreams are the standard streams of one command invocation.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}
