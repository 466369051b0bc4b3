package backup

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/seedhq/seed/manifests"
)

// Location reads the health of the install's BackupStorageLocation alone:
// one request, for the passes between two full Ensure calls.
func (i *Installer) Location(ctx context.Context) (Health, error) {
	got, err := i.Dynamic.Resource(locationGVR).Namespace(i.namespace()).Get(ctx, manifests.VeleroLocation, metav1.GetOptions{})
	if err != nil {
		return Health{}, fmt.Errorf("reading BackupStorageLocation %s/%s: %w", i.namespace(), manifests.VeleroLocation, err)
	}
	return locationHealth(got), nil
}

// locationHealth is an installed location's part of Health.
func locationHealth(location *unstructured.Unstructured) Health {
	h := Health{Installed: true}
	h.LocationPhase, _, _ = unstructured.NestedString(location.Object, "status", "phase")
	h.LocationMessage, _, _ = unstructured.NestedString(location.Object, "status", "message")
	if s, _, _ := unstructured.NestedString(location.Object, "status", "lastValidationTime"); s != "" {
		h.LocationValidated, _ = time.Parse(time.RFC3339, s)
	}
	return h
}
