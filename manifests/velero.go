package manifests

import (
	"embed"
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

//go:embed velero/*.yaml velero/crds/*.yaml velero/crds/VERSION
var veleroFS embed.FS

// Velero's images, as hack/build-velero.sh tags them.
const (
	VeleroImage       = "velero/velero:v1.18.3"
	VeleroPluginImage = "velero/velero-plugin-for-aws:v1.14.3"
)

// VeleroImages are the images Velero's Deployment runs, which machines
// that may run it (the control plane) must have.
func VeleroImages() []string { return []string{VeleroImage, VeleroPluginImage} }

// VeleroParams are what one cluster's Velero install differs by.
type VeleroParams struct {
	// Namespace is Velero's (default velero).
	Namespace string
	// PullPolicy of Velero's images (default Never: Seed ships them).
	PullPolicy string
	// S3URL, Bucket and Region say where the store is.
	S3URL  string
	Bucket string
	Region string
	// CredentialsSecret names the Secret, in Namespace, whose key "cloud"
	// is an AWS shared-credentials file for the store.
	CredentialsSecret string
	// ValidationFrequency is how often Velero checks the store (default 15s).
	ValidationFrequency string
	// SyncPeriod is how long after its last read of the store's backups
	// Velero reads them again (default 10s; Velero looks once a minute).
	SyncPeriod string
}

// VeleroLocation is the BackupStorageLocation Seed installs, and
// VeleroPrefix the folder of the bucket it keeps Velero's backups in.
const (
	VeleroLocation = v1alpha1.BackupStorageLocation
	VeleroPrefix   = "velero"
)

// DefaultVeleroNamespace is where Velero runs.
const DefaultVeleroNamespace = "velero"

// VeleroCRDs returns Velero's CustomResourceDefinitions, which must be
// Established before anything of theirs is created.
func VeleroCRDs() ([]*unstructured.Unstructured, error) {
	return render(veleroFS, "velero/crds", struct{}{})
}

// Velero renders the rest of the install (namespace, RBAC, Deployment and
// BackupStorageLocation) in the order they must be created. The
// credentials Secret is the caller's: its content is not Seed's to render.
func Velero(p VeleroParams) ([]*unstructured.Unstructured, error) {
	if p.Namespace == "" {
		p.Namespace = DefaultVeleroNamespace
	}
	if p.PullPolicy == "" {
		p.PullPolicy = "Never"
	}
	if p.ValidationFrequency == "" {
		p.ValidationFrequency = "15s"
	}
	if p.SyncPeriod == "" {
		p.SyncPeriod = "10s"
	}
	u, err := url.Parse(p.S3URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rendering Velero manifests: store URL %q is not an http(s) URL", p.S3URL)
	}
	for name, v := range map[string]string{"bucket": p.Bucket, "region": p.Region, "credentials Secret": p.CredentialsSecret} {
		if v == "" || strings.ContainsAny(v, " \n\"'") {
			return nil, fmt.Errorf("rendering Velero manifests: the %s %q is not usable", name, v)
		}
	}
	data := struct {
		VeleroParams
		VeleroImage, PluginImage, Location, Prefix, NameSuffix string
	}{VeleroParams: p, VeleroImage: VeleroImage, PluginImage: VeleroPluginImage, Location: VeleroLocation, Prefix: VeleroPrefix}
	if p.Namespace != DefaultVeleroNamespace {
		data.NameSuffix = "-" + p.Namespace
	}
	return render(veleroFS, "velero", data)
}
