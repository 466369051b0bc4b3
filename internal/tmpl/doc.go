// Package tmpl expands the part of text/template's language that Seed's
// embedded files use: {{.Field}}, {{if .Field}} … {{else}} … {{end}},
// trim markers, and calls of the caller's own functions, producing the same
// bytes text/template would. It exists for the binaries' size: executing a
// text/template makes the linker keep every exported method of every type
// held in an interface (its evaluator looks methods up by name), while
// this package reads struct fields only and never calls a method.
package tmpl
