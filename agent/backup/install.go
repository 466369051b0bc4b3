package backup

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/velero"
)

// FieldManager owns what the agent applies.
const FieldManager = "seed-agent"

// CredentialsSecret is the Secret, in Velero's namespace, holding the
// store's keys as an AWS shared-credentials file under the key "cloud".
const CredentialsSecret = "seed-backup-credentials"

// Store is where backups go, as the install needs it.
type Store struct {
	// URL is the store's S3 endpoint as pods reach it.
	URL    string
	Bucket string
	Region string
	// Credentials is an AWS shared-credentials file for the store.
	Credentials []byte
}

// Health is what the install looks like after Ensure.
type Health struct {
	// Installed: every object is applied and the CRDs are Established.
	Installed bool
	// Waiting, when not Installed, says what the install waits for.
	Waiting string
	// LocationPhase is the BackupStorageLocation's phase (Available,
	// Unavailable, or "" before Velero first checked it), with Velero's
	// message and the time of its last check.
	LocationPhase     string
	LocationMessage   string
	LocationValidated time.Time
}

// Installer applies Velero's install and reads back its health. Every call
// applies everything again (server-side apply, so what is unchanged stays
// unchanged and a hand edit of a field Seed sets is put back), and never
// waits: CRDs not yet Established are reported, and the rest is applied on
// a later call.
type Installer struct {
	Dynamic dynamic.Interface
	Core    kubernetes.Interface
	// Namespace is Velero's (default velero).
	Namespace string
	// PullPolicy of Velero's images (default Never).
	PullPolicy string
}

var (
	crdGVR      = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	locationGVR = velero.LocationGVR
	// BackupGVR is Velero's Backup resource.
	BackupGVR = velero.BackupGVR
)

// resources maps the kinds manifests.Velero renders to their resources.
var resources = map[string]struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}{
	"Namespace":             {schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false},
	"ServiceAccount":        {schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, true},
	"ClusterRole":           {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, false},
	"ClusterRoleBinding":    {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}, false},
	"Role":                  {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, true},
	"RoleBinding":           {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, true},
	"Deployment":            {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
	"BackupStorageLocation": {locationGVR, true},
}

func (i *Installer) namespace() string {
	if i.Namespace == "" {
		return manifests.DefaultVeleroNamespace
	}
	return i.Namespace
}

// Ensure applies the install for store and reports its health.
func (i *Installer) Ensure(ctx context.Context, store Store) (Health, error) {
	crds, err := manifests.VeleroCRDs()
	if err != nil {
		return Health{}, err
	}
	var pending []string
	for _, crd := range crds {
		got, err := i.apply(ctx, i.Dynamic.Resource(crdGVR), crd)
		if err != nil {
			return Health{}, err
		}
		if !established(got) {
			pending = append(pending, crd.GetName())
		}
	}
	if len(pending) > 0 {
		// Objects of a kind whose CRD is not Established yet are refused
		// ("no matches for kind"), so the rest waits for a later call.
		return Health{Waiting: "Velero's CRDs to be Established: " + strings.Join(pending, ", ")}, nil
	}

	objs, err := manifests.Velero(manifests.VeleroParams{
		Namespace: i.namespace(), PullPolicy: i.PullPolicy,
		S3URL: store.URL, Bucket: store.Bucket, Region: store.Region, CredentialsSecret: CredentialsSecret,
	})
	if err != nil {
		return Health{}, err
	}
	// The namespace first, then the credentials the Deployment mounts and
	// the location names, then the rest in order.
	if _, err := i.applyRendered(ctx, objs[0]); err != nil {
		return Health{}, err
	}
	if err := i.applyCredentials(ctx, store.Credentials); err != nil {
		return Health{}, err
	}
	var location *unstructured.Unstructured
	for _, obj := range objs[1:] {
		got, err := i.applyRendered(ctx, obj)
		if err != nil {
			return Health{}, err
		}
		if obj.GetKind() == "BackupStorageLocation" {
			location = got
		}
	}
	if location == nil {
		return Health{Installed: true}, nil
	}
	return locationHealth(location), nil
}

func (i *Installer) applyRendered(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	r, ok := resources[obj.GetKind()]
	if !ok {
		return nil, fmt.Errorf("applying Velero's install: no resource known for kind %s", obj.GetKind())
	}
	var ri dynamic.ResourceInterface = i.Dynamic.Resource(r.gvr)
	if r.namespaced {
		ri = i.Dynamic.Resource(r.gvr).Namespace(obj.GetNamespace())
	}
	return i.apply(ctx, ri, obj)
}

func (i *Installer) apply(ctx context.Context, ri dynamic.ResourceInterface, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	got, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		ref := obj.GetKind() + " " + obj.GetName()
		if ns := obj.GetNamespace(); ns != "" {
			ref = obj.GetKind() + " " + ns + "/" + obj.GetName()
		}
		return nil, fmt.Errorf("applying %s: %w", ref, err)
	}
	return got, nil
}

// applyCredentials writes the store's keys into the Secret Velero reads,
// by server-side apply: a create could not be limited to this name in the
// agent's RBAC, a patch can.
func (i *Installer) applyCredentials(ctx context.Context, credentials []byte) error {
	want := corev1ac.Secret(CredentialsSecret, i.namespace()).
		WithLabels(map[string]string{"app.kubernetes.io/part-of": "seed"}).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{"cloud": credentials})
	if _, err := i.Core.CoreV1().Secrets(i.namespace()).Apply(ctx, want, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying Secret %s/%s: %w", i.namespace(), CredentialsSecret, err)
	}
	return nil
}

// established reports whether a CRD's Established condition is True.
func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// SharedCredentials renders keys as the AWS shared-credentials file the
// AWS plugin reads. A store without keys (the AWS provider's, which pods
// reach with the control plane's instance role) gets a default profile
// that holds none: the plugin's SDK then takes the instance role through
// IMDS, as openStore does.
func SharedCredentials(accessKeyID, secretAccessKey string) []byte {
	if accessKeyID == "" && secretAccessKey == "" {
		return []byte("[default]\n")
	}
	return fmt.Appendf(nil, "[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n", accessKeyID, secretAccessKey)
}
