// Package drain empties a Node before its machine is deleted: it cordons the
// Node and evicts its pods through the Eviction API, so PodDisruptionBudgets
// are honoured. A Step never blocks: it asks for every eviction it can and
// reports what is left, and the caller steps again on its next pass. Pods and
// budgets are read from informer caches; only the final "empty" verdict is
// confirmed by one live read, so a pod the cache has not seen yet is never
// left behind on a machine about to be deleted.
package drain
