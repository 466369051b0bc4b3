// Package providers defines the seam between Seed and the infrastructure it
// runs on: a small, context-first Provider interface, the machine types it
// speaks in, and typed errors that callers branch on. It imports no SDK;
// implementations live in sub-packages (docker, aws, simulated, fake) and
// a metrics decorator wraps any of them.
package providers
