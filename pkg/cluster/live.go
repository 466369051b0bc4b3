package cluster

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/registry"
)

// AppliedSpec returns the spec the agent acts on: the last valid spec it
// stored in its status, or nil when it has stored none yet.
func AppliedSpec(ctx context.Context, core *kube.Core) (*v1alpha1.Cluster, error) {
	cm, err := core.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.StatusConfigMap)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the agent's status: %w", err)
	}
	raw, ok := cm.Data[v1alpha1.AppliedSpecKey]
	if !ok {
		return nil, nil
	}
	c, err := v1alpha1.Load([]byte(raw), v1alpha1.ValidateOptions{})
	if err != nil {
		return nil, fmt.Errorf("decoding the spec the agent applied (%s/%s key %s): %w",
			v1alpha1.DefaultNamespace, v1alpha1.StatusConfigMap, v1alpha1.AppliedSpecKey, err)
	}
	return c, nil
}

// OpenLive returns the spec the running cluster cfg points at acts on (the
// agent's applied spec, else the spec ConfigMap's) and its provider: what
// verbs that act on a running cluster start with, so that they need no
// spec file.
func OpenLive(ctx context.Context, cfg *rest.Config) (*v1alpha1.Cluster, providers.Provider, error) {
	core, err := kube.NewCore(cfg)
	if err != nil {
		return nil, nil, err
	}
	c, err := AppliedSpec(ctx, core)
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		cm, err := core.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.SpecConfigMap)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the cluster spec: %w", err)
		}
		if c, err = v1alpha1.Load([]byte(cm.Data[v1alpha1.SpecKey]), v1alpha1.ValidateOptions{}); err != nil {
			return nil, nil, fmt.Errorf("the cluster spec %s/%s: %w", v1alpha1.DefaultNamespace, v1alpha1.SpecConfigMap, err)
		}
	}
	p, err := registry.New(ctx, c, registry.Env{})
	if err != nil {
		return nil, nil, err
	}
	return c, p, nil
}
