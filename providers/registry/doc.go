// Package registry turns a cluster spec into the Provider it selects. Adding
// a provider is one folder under providers/ and one line in the table here.
package registry
