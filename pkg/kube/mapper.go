package kube

import (
	"context"
	"fmt"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// mapper finds the resource that serves a kind, and whether it is
// namespaced, in the API server's resource list for the kind's group and
// version: what client-go's discovery-backed RESTMapper reads, without its
// discovery package (which links protobuf; see Core). Lists are read when
// first needed and kept, except that a kind missing from a kept list reads
// the list again, in case its API was added since. It is safe for
// concurrent use, as client-go's mappers are.
type mapper struct {
	client rest.Interface

	mu    sync.Mutex
	lists map[schema.GroupVersion][]metav1.APIResource
}

func newMapper(client rest.Interface) *mapper {
	return &mapper{client: client, lists: map[schema.GroupVersion][]metav1.APIResource{}}
}

// resourceFor returns the resource serving gvk and whether its objects live
// in namespaces. A kind the server does not serve is a *meta.NoKindMatchError.
func (m *mapper) resourceFor(ctx context.Context, gvk schema.GroupVersionKind) (schema.GroupVersionResource, bool, error) {
	gv := gvk.GroupVersion()
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := find(m.lists[gv], gvk.Kind); ok {
		return gv.WithResource(r.Name), r.Namespaced, nil
	}
	// Not read yet, or read before this kind was served.
	list, err := m.read(ctx, gv)
	if err != nil {
		return schema.GroupVersionResource{}, false, err
	}
	m.lists[gv] = list
	if r, ok := find(list, gvk.Kind); ok {
		return gv.WithResource(r.Name), r.Namespaced, nil
	}
	return schema.GroupVersionResource{}, false, &meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{gvk.Version}}
}

// find picks the resource of a kind. Subresources (deployments/scale) name
// the kinds they accept too, and are skipped.
func find(list []metav1.APIResource, kind string) (metav1.APIResource, bool) {
	for _, r := range list {
		if r.Kind == kind && !strings.Contains(r.Name, "/") {
			return r, true
		}
	}
	return metav1.APIResource{}, false
}

// read fetches one group version's resources, as discovery does: the core
// group at /api/v1, the others at /apis/<group>/<version>. A group version
// the server does not serve has no resources.
func (m *mapper) read(ctx context.Context, gv schema.GroupVersion) ([]metav1.APIResource, error) {
	path := "/apis/" + gv.String()
	if gv.Group == "" {
		path = "/api/" + gv.Version
	}
	var list metav1.APIResourceList
	err := getJSON(ctx, m.client.Get().AbsPath(path), &list)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the resources of %s: %w", gv, err)
	}
	return list.APIResources, nil
}
