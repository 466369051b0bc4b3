package cluster

import (
	"context"
	"fmt"
	"os"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/registry"
)

// DefaultSpecYAML is the spec of `seed up` without a file: a local Docker
// cluster with one control-plane machine and no pools yet.
func DefaultSpecYAML(name string) []byte {
	return fmt.Appendf(nil, `apiVersion: %s
kind: Cluster
metadata:
  name: %s
spec:
  kubernetesVersion: %s
  provider:
    docker: {}
  nodePools: []
`, v1alpha1.APIVersion, name, v1alpha1.DefaultKubernetesVersion)
}

// LoadSpec reads the spec at path ("-" is not supported here: the spec is
// also installed into the cluster, so it must be a file) or, with no path,
// the default spec for name. It returns the spec defaulted and validated,
// and the document as written.
func LoadSpec(path, name string) (*v1alpha1.Cluster, []byte, error) {
	var raw []byte
	if path == "" {
		raw = DefaultSpecYAML(name)
	} else {
		var err error
		if raw, err = os.ReadFile(path); err != nil {
			return nil, nil, fmt.Errorf("reading the cluster spec: %w", err)
		}
	}
	c, err := v1alpha1.Load(raw, v1alpha1.ValidateOptions{})
	if err != nil {
		where := path
		if where == "" {
			where = "the default spec"
		}
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	return c, raw, nil
}

// Open loads the spec (see LoadSpec) and builds the provider it selects: what
// every seed verb that touches infrastructure starts with. agentImage is the
// agent image `seed up` installs, which providers may run containers of
// their own from (the Docker provider's load balancer); other verbs pass "".
func Open(ctx context.Context, path, name, agentImage string) (*v1alpha1.Cluster, []byte, providers.Provider, error) {
	c, raw, err := LoadSpec(path, name)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := registry.New(ctx, c, registry.Env{AgentImage: agentImage, OnHost: true})
	if err != nil {
		return nil, nil, nil, err
	}
	return c, raw, p, nil
}
