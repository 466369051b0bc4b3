// Package fake is an in-memory Provider for tests: machines are map entries,
// every call is counted, failures and delays can be programmed per method,
// and an OnCreate hook lets a test register a Node to simulate a join.
package fake
