// Package backup is the agent's side of backups: it installs Velero and
// keeps it pointed at the cluster's store (Installer), and judges whether a
// backup is good enough for a risky change to go ahead (Judge, a pure
// function kept in pkg/velero, which the seed shares). Velero's objects are read as unstructured data, so the agent
// carries none of Velero's Go dependencies.
package backup
