// Package velero is what both the seed and the agent know of Velero's
// objects: the names Seed installs them under, the label Velero honours to
// leave an object out of backups, the verdict on a Backup (Judge, a pure
// function) and on a Restore, and the Backup and Restore objects Seed asks
// for. Objects are read and written as unstructured data, so neither binary
// carries Velero's Go dependencies.
package velero
