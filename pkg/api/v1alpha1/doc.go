// Package v1alpha1 is the user-facing cluster spec: its types, the one place
// where defaults are applied, strict decoding and validation. Both binaries
// use it; it has no dependency on a provider or on client-go.
package v1alpha1
