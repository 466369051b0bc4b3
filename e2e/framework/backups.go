package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

// BackupsSpec is the spec section that enables backups to the Docker
// provider's own store.
const BackupsSpec = "  backup:\n    enabled: true\n"

// RequireBackupImages fails (under CI=true) or skips the test unless the
// images backups run are in the Docker engine: Velero's, which go to the
// control plane, and the store's, which hack/test.sh names in
// SEED_BACKUP_STORE_IMAGE.
func RequireBackupImages(t testing.TB) {
	t.Helper()
	store := os.Getenv("SEED_BACKUP_STORE_IMAGE")
	if store == "" {
		store = "the backup store's (SEED_BACKUP_STORE_IMAGE is not set)"
	}
	var missing []string
	for _, ref := range append(manifests.VeleroImages(), store) {
		if exec.Command("docker", "image", "inspect", ref).Run() != nil {
			missing = append(missing, ref)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("backups need images not in the Docker engine: %s (hack/build-velero.sh and hack/build-versitygw.sh build them; hack/test.sh e2e runs both)",
		strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// DeleteBackupsAtEnd registers `seed down --delete-backups` for when the
// test ends, after every cleanup registered later (the cluster's own seed
// down and its diagnostics among them), so that the store the cluster
// left behind goes too.
func DeleteBackupsAtEnd(t testing.TB, name string) {
	t.Helper()
	t.Cleanup(func() {
		if os.Getenv("SEED_E2E_KEEP") == "1" {
			t.Logf("keeping the backup store of %s (SEED_E2E_KEEP=1)", name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if r := Seed(ctx, "down", "--name", name, "--delete-backups", "--kubeconfig", ""); r.Err != nil {
			t.Errorf("seed down --delete-backups: %v\n%s", r.Err, r.Stderr)
		}
	})
}

// WaitBackupsReady waits until the agent reports Velero installed and its
// storage location Available.
func (c *Cluster) WaitBackupsReady(ctx context.Context, t testing.TB, timeout time.Duration) time.Duration {
	t.Helper()
	return Eventually(t, timeout, "the agent to report backups ready (BackupLocationAvailable)", func() (bool, string) {
		st, err := c.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, cond := range st.Conditions {
			if cond.Type == v1alpha1.ConditionBackupLocationAvailable {
				return cond.Status == "True", cond.Reason + ": " + cond.Message
			}
		}
		return false, "no " + v1alpha1.ConditionBackupLocationAvailable + " condition yet"
	})
}
