package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

// exitUsage is the dispatcher's own exit code for an unknown program.
const exitUsage = 2

func main() {
	os.Exit(run(os.Args, os.Stderr))
}

// run dispatches to the program named by args. Unlike kube, a bare `etcd`
// never reads a program name from its arguments: its arguments are etcd's.
func run(args []string, stderr io.Writer) int {
	programs := map[string]func(args []string) int{
		"etcd": func(args []string) int {
			etcdmain.Main(args)
			return 0
		},
	}
	addEtcdctl(programs)

	name, rest := filepath.Base(args[0]), args[1:]
	if _, ok := programs[name]; !ok && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	program, ok := programs[name]
	if !ok {
		usage(stderr, programs)
		return exitUsage
	}
	// etcdctl's cobra command reads os.Args itself.
	os.Args = append([]string{name}, rest...)
	return program(os.Args)
}

func usage(w io.Writer, programs map[string]func([]string) int) {
	names := make([]string, 0, len(programs))
	for name := range programs {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: call this binary through a link named after one of its programs\nprograms:")
	for _, name := range names {
		fmt.Fprintf(w, "  %s\n", name)
	}
}
