// The tests that need the previous minor's node image wait for it before
// they take a cluster slot (framework.Parallel): hack/test.sh builds that
// image in the background while the others run (see waitForBackgroundImage).

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

var veleroBackups = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backups"}

// TestBackupGatesUpgrade: with backups enabled, a version change asked
// for while the backup store is stopped waits: the control plane is not
// replaced, no backup is asked for (Velero would fail it at once), and the
// status says what waits and why. Once the store runs again, the agent
// takes a backup for the change, waits until Velero has completed it and
// its etcd snapshot is stored beside it, and only then replaces the
// control plane; the record of the backup goes once the upgrade is done.
func TestBackupGatesUpgrade(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t, func(t testing.TB) { requireNodeImages(t, upgradeFrom, upgradeTo) })
	name := framework.NewName("e2e-bgate")
	spec := func(version string) string {
		return fmt.Sprintf(`apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata:
  name: %s
spec:
  kubernetesVersion: %s
  provider:
    docker: {}
  backup:
    enabled: true
  nodePools: []
`, name, version)
	}
	// Registered first, so it runs last: after the cluster is down (and
	// its state dumped on failure), its store and backups go too.
	specFile := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(specFile, []byte(spec(upgradeFrom)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if r := framework.Seed(ctx, "down", "-f", specFile, "--delete-backups"); r.Err != nil {
			t.Errorf("seed down --delete-backups: %v\n%s", r.Err, r.Stderr)
		}
	})
	c := framework.Up(t, name, spec(upgradeFrom))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	status := func() *v1alpha1.ClusterStatus {
		st, err := c.Status(ctx)
		if err != nil {
			return &v1alpha1.ClusterStatus{}
		}
		return st
	}
	condition := func(typ string) *v1alpha1.Condition {
		if cond := status().Condition(typ); cond != nil {
			return cond
		}
		return &v1alpha1.Condition{}
	}
	change := "upgrade-" + upgradeTo
	backupsForChange := func() []unstructured.Unstructured {
		list, err := dyn.Resource(veleroBackups).Namespace("velero").List(ctx, metav1.ListOptions{LabelSelector: "seed.dev/change=" + change})
		if err != nil {
			return nil
		}
		return list.Items
	}
	ledger := func() map[string]string {
		cm, err := c.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.LedgerConfigMap, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return cm.Data
	}
	replacing := func() bool {
		for _, raw := range ledger() {
			if strings.Contains(raw, `"op":"`+opReplaceControlPlane+`"`) {
				return true
			}
		}
		return false
	}

	framework.Eventually(t, 5*time.Minute, "Velero installed and its location Available", func() (bool, string) {
		cond := condition(v1alpha1.ConditionBackupLocationAvailable)
		return cond.Status == "True", cond.Reason + ": " + cond.Message
	})

	store := name + "-backups"
	framework.Docker(t, "stop", store)
	framework.Eventually(t, 2*time.Minute, "the agent finding the store stopped", func() (bool, string) {
		cond := condition(v1alpha1.ConditionBackupLocationAvailable)
		return cond.Status == "False", cond.Reason + ": " + cond.Message
	})
	edit := time.Now()
	c.EditSpec(ctx, t, spec(upgradeTo))
	framework.Eventually(t, 2*time.Minute, "the upgrade waiting for the store", func() (bool, string) {
		cond := condition(v1alpha1.ConditionChangeWaitingForBackup)
		return cond.Status == "True" && strings.Contains(cond.Message, "waits for a backup, and none can be taken") &&
			strings.Contains(cond.Message, store+" is exited"), cond.Reason + ": " + cond.Message
	})
	// It keeps waiting: nothing is asked of Velero or the provider.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if n := len(backupsForChange()); n > 0 || replacing() {
			t.Fatalf("with the store stopped: %d backups asked for, control plane being replaced: %v", n, replacing())
		}
		time.Sleep(time.Second)
	}
	for _, m := range machines(t, name) {
		if m.Version != upgradeFrom {
			t.Fatalf("machine %s runs %s while the upgrade waits for its backup", m.Name, m.Version)
		}
	}
	t.Logf("the upgrade waited %s with the store stopped: %s", time.Since(edit).Round(time.Second),
		condition(v1alpha1.ConditionChangeWaitingForBackup).Message)

	framework.Docker(t, "start", store)
	var backupName string
	framework.Eventually(t, 5*time.Minute, "a backup for the upgrade, completed", func() (bool, string) {
		bs := backupsForChange()
		if len(bs) != 1 {
			return false, fmt.Sprintf("%d backups for the change; waiting: %s", len(bs), condition(v1alpha1.ConditionChangeWaitingForBackup).Message)
		}
		backupName = bs[0].GetName()
		phase, _, _ := unstructured.NestedString(bs[0].Object, "status", "phase")
		return phase == "Completed", "backup " + backupName + " is " + phase
	})
	framework.Eventually(t, upgradeTimeout, "the control plane upgraded", func() (bool, string) {
		var cps []string
		done := false
		for _, m := range machinesWithRole(machines(t, name), providers.RoleControlPlane) {
			cps = append(cps, m.Name+"@"+m.Version)
			done = m.Version == upgradeTo
		}
		return len(cps) == 1 && done && !replacing(), strings.Join(cps, ", ")
	})

	// Velero's part completed before the replacement began, and the etcd
	// snapshot is in the store beside it.
	b, err := dyn.Resource(veleroBackups).Namespace("velero").Get(ctx, backupName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	completed, _, _ := unstructured.NestedString(b.Object, "status", "completionTimestamp")
	doneAt, err := time.Parse(time.RFC3339, completed)
	if err != nil {
		t.Fatalf("backup %s completion %q: %v", backupName, completed, err)
	}
	items, _, _ := unstructured.NestedInt64(b.Object, "status", "progress", "itemsBackedUp")
	total, _, _ := unstructured.NestedInt64(b.Object, "status", "progress", "totalItems")
	if items != total || total == 0 {
		t.Errorf("backup %s holds %d of %d items", backupName, items, total)
	}
	cp := machinesWithRole(machines(t, name), providers.RoleControlPlane)[0]
	if !cp.Created.After(doneAt) {
		t.Errorf("the new control plane %s was created at %s, before its backup %s completed at %s", cp.Name, cp.Created, backupName, doneAt)
	}
	// The store keeps each bucket as a directory of its /data mount.
	data := framework.Docker(t, "inspect", "--format", `{{range .Mounts}}{{if eq .Destination "/data"}}{{.Source}}{{end}}{{end}}`, store)
	metas, _ := filepath.Glob(filepath.Join(data, "*", "etcd", name, backupName, "meta.json"))
	if len(metas) != 1 {
		t.Fatalf("the etcd snapshot of backup %s is not in the store (%s): found %v", backupName, data, metas)
	}
	meta, err := os.ReadFile(metas[0])
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(meta, &m); err != nil || m.Size == 0 || len(m.SHA256) != 64 {
		t.Errorf("etcd snapshot meta.json %s: %v", meta, err)
	}
	framework.Eventually(t, 2*time.Minute, "the backup's record forgotten and nothing waiting", func() (bool, string) {
		cond := condition(v1alpha1.ConditionChangeWaitingForBackup)
		_, recorded := ledger()["backup."+change]
		return cond.Status == "False" && !recorded, fmt.Sprintf("recorded %v; %s: %s", recorded, cond.Reason, cond.Message)
	})
}
