// Package tools pins the developer tools Seed runs with `go tool`, in a module
// of their own so their dependencies never reach the binaries' go.mod.
package tools
