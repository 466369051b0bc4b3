package manifests

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestVeleroCRDsAreEveryVeleroKind(t *testing.T) {
	crds, err := VeleroCRDs()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, c := range crds {
		if c.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s %s in the CRDs", c.GetKind(), c.GetName())
		}
		group, _, _ := unstructured.NestedString(c.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(c.Object, "spec", "names", "kind")
		if group != "velero.io" {
			t.Errorf("CRD %s is of group %q", c.GetName(), group)
		}
		kinds[kind] = true
	}
	// The server refuses to start unless both API versions' kinds exist.
	for _, k := range []string{"Backup", "BackupStorageLocation", "Restore", "Schedule", "DeleteBackupRequest", "DataUpload", "DataDownload"} {
		if !kinds[k] {
			t.Errorf("no CRD for %s", k)
		}
	}
	if len(crds) != 13 {
		t.Errorf("%d CRDs, want Velero's 13", len(crds))
	}
}

func TestVeleroRendersTheInstallSeedReliesOn(t *testing.T) {
	objs, err := Velero(VeleroParams{S3URL: "http://172.18.0.5:7070", Bucket: "seed-backups", Region: "us-east-1", CredentialsSecret: "seed-backup-credentials"})
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]*unstructured.Unstructured{}
	var order []string
	for _, o := range objs {
		byKind[o.GetKind()+"/"+o.GetName()] = o
		order = append(order, o.GetKind())
	}
	if order[0] != "Namespace" || order[len(order)-1] != "BackupStorageLocation" {
		t.Errorf("order %v: the namespace first, the location (whose CRD and credentials come first) last", order)
	}
	d := byKind["Deployment/velero"]
	if d == nil {
		t.Fatalf("no Deployment named velero (restores need exactly that name): %v", order)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	inits, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "initContainers")
	if len(containers) != 1 || len(inits) != 1 ||
		containers[0].(map[string]any)["image"] != VeleroImage || inits[0].(map[string]any)["image"] != VeleroPluginImage ||
		containers[0].(map[string]any)["imagePullPolicy"] != "Never" {
		t.Errorf("containers %v, init containers %v", containers, inits)
	}
	// A new cluster on an old store (the lifeboat) waits for the sync
	// before it restores: at 10s, each of Velero's once-a-minute looks
	// syncs.
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	if !slices.Contains(args, "--backup-sync-period=10s") || !slices.Contains(args, "--store-validation-frequency=15s") {
		t.Errorf("server args %v: want a 10s backup sync and a 15s store validation", args)
	}
	bsl := byKind["BackupStorageLocation/"+VeleroLocation]
	if bsl == nil {
		t.Fatalf("no BackupStorageLocation %s: %v", VeleroLocation, order)
	}
	prefix, _, _ := unstructured.NestedString(bsl.Object, "spec", "objectStorage", "prefix")
	s3url, _, _ := unstructured.NestedString(bsl.Object, "spec", "config", "s3Url")
	if prefix != VeleroPrefix || s3url != "http://172.18.0.5:7070" || bsl.GetNamespace() != DefaultVeleroNamespace {
		t.Errorf("location: prefix %q, s3Url %q, namespace %q", prefix, s3url, bsl.GetNamespace())
	}
	if crb := byKind["ClusterRoleBinding/seed-velero"]; crb == nil {
		t.Error("no ClusterRoleBinding seed-velero")
	} else if ref, _, _ := unstructured.NestedString(crb.Object, "roleRef", "name"); ref == "cluster-admin" {
		t.Error("Velero is bound to cluster-admin")
	}

	for _, bad := range []VeleroParams{
		{S3URL: "172.18.0.5:7070", Bucket: "b", Region: "r", CredentialsSecret: "s"},
		{S3URL: "http://h:1", Region: "r", CredentialsSecret: "s"},
		{S3URL: "http://h:1", Bucket: "b", Region: "r"},
	} {
		if _, err := Velero(bad); err == nil || !strings.Contains(err.Error(), "rendering Velero manifests") {
			t.Errorf("Velero(%+v) = %v, want an error", bad, err)
		}
	}
}
