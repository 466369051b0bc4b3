package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Creator creates objects that do not exist yet and leaves existing ones
// alone, so that running the seed again changes nothing, and a spec the user
// has edited is never overwritten.
type Creator struct {
	dynamic dynamic.Interface
	mapper  *mapper
}

// NewCreator returns a Creator for the cluster cfg points at.
func NewCreator(cfg *rest.Config) (*Creator, error) {
	core, err := newCoreREST(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating dynamic client: %w", err)
	}
	return &Creator{dynamic: dyn, mapper: newMapper(core)}, nil
}

// Result says what happened to one object.
type Result struct {
	// Ref is "Kind namespace/name".
	Ref     string
	Created bool
}

// CreateMissing creates each object that does not exist, in order.
func (c *Creator) CreateMissing(ctx context.Context, objs []*unstructured.Unstructured) ([]Result, error) {
	var results []Result
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		ref := gvk.Kind + " " + obj.GetName()
		if ns := obj.GetNamespace(); ns != "" {
			ref = gvk.Kind + " " + ns + "/" + obj.GetName()
		}
		resource, namespaced, err := c.mapper.resourceFor(ctx, gvk)
		if err != nil {
			return results, fmt.Errorf("finding the API for %s: %w", ref, err)
		}
		var ri dynamic.ResourceInterface = c.dynamic.Resource(resource)
		if namespaced {
			ri = c.dynamic.Resource(resource).Namespace(obj.GetNamespace())
		}
		_, err = ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err == nil {
			results = append(results, Result{Ref: ref})
			continue
		}
		if !apierrors.IsNotFound(err) {
			return results, fmt.Errorf("reading %s: %w", ref, err)
		}
		_, err = ri.Create(ctx, obj, metav1.CreateOptions{FieldManager: "seed"})
		if apierrors.IsAlreadyExists(err) {
			results = append(results, Result{Ref: ref})
			continue
		}
		if err != nil {
			return results, fmt.Errorf("creating %s: %w", ref, err)
		}
		results = append(results, Result{Ref: ref, Created: true})
	}
	return results, nil
}
