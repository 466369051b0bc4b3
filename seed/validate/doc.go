// Package validate is the `seed validate` verb: it checks a cluster spec file
// exactly as the agent will load it, without touching any machine, so that
// mistakes surface before `seed create` or a `kubectl edit` reaches the cluster.
package validate
