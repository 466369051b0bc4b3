package controller

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/seedhq/seed/agent/backup"
	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	seedledger "github.com/seedhq/seed/pkg/ledger"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

// snapshots records the etcd snapshots asked for; no etcd runs here (the
// snapshot itself is agent/backup's, tested against a real etcd and store).
type snapshots struct {
	mu    sync.Mutex
	taken []EtcdSnapshot
}

func (s *snapshots) SnapshotEtcd(_ context.Context, req EtcdSnapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taken = append(s.taken, req)
	return nil
}

func (s *snapshots) backups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.taken {
		out = append(out, r.Backup)
	}
	return out
}

const backupsOn = "  backup:\n    enabled: true\n"

// Against a real kube-apiserver, with the agent's own RBAC, Velero's CRDs
// and Velero's part played by the test (its server does not run here): a
// removed pool's machines stay while no backup can be taken, and the
// status says why; the backup's name is recorded before it is asked for,
// so an agent killed in between leaves a name the next one asks for, not a
// second backup; the machines go once the backup is complete and its etcd
// snapshot stored, and the record goes with the change.
func TestBackupGateHoldsAPoolRemovalUntilItsBackupIsGood(t *testing.T) {
	h := newHarness(t, specYAML(1, backupsOn))
	h.provider.SetCapabilities(providers.Capabilities{KeepsBackupStore: true})
	agentDyn, err := dynamic.NewForConfig(h.env.ServiceAccountConfig(h.ns, "seed-agent"))
	if err != nil {
		t.Fatal(err)
	}
	adminDyn, err := dynamic.NewForConfig(h.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	snaps := &snapshots{}
	withBackups := func(o *Options) { o.Dynamic, o.EtcdSnapshots = agentDyn, snaps }
	ctx := t.Context()
	backups := adminDyn.Resource(backup.BackupGVR).Namespace(manifests.DefaultVeleroNamespace)
	locations := adminDyn.Resource(locationGVR).Namespace(manifests.DefaultVeleroNamespace)
	setLocation := func(phase string) {
		t.Helper()
		bsl, err := locations.Get(ctx, manifests.VeleroLocation, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		unstructured.RemoveNestedField(bsl.Object, "status")
		if phase != "" {
			_ = unstructured.SetNestedField(bsl.Object, phase, "status", "phase")
		}
		if _, err := locations.Update(ctx, bsl, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const change = "remove-pool-workers"
	ours := func() []unstructured.Unstructured {
		t.Helper()
		list, err := backups.List(ctx, metav1.ListOptions{LabelSelector: "seed.dev/change=" + change + ",seed.dev/cluster=test"})
		if apierrors.IsNotFound(err) {
			return nil // Velero's CRDs are not installed yet
		}
		if err != nil {
			t.Fatal(err)
		}
		return list.Items
	}
	for _, b := range ours() { // Velero's namespace is the whole API server's
		_ = backups.Delete(ctx, b.GetName(), metav1.DeleteOptions{})
	}
	waiting := func() *v1alpha1.Condition {
		st := h.status()
		return st.Condition(v1alpha1.ConditionChangeWaitingForBackup)
	}
	waitingReason := func() string {
		c := waiting()
		if c == nil || c.Status != "True" {
			return ""
		}
		return c.Reason
	}

	stop := h.startAgent("agent-a", withBackups)
	eventually(t, time.Minute, "a worker and Velero installed", func() bool {
		st := h.status()
		return len(h.workers("workers")) == 1 && st.Backup != nil && st.Backup.Installed
	})
	setLocation("")
	noPools := strings.Replace(specYAML(0, backupsOn), "  nodePools:\n  - name: workers\n    replicas: 0\n", "", 1)
	h.setSpec(noPools)
	eventually(t, 30*time.Second, "the removal waiting for a location", func() bool { return waitingReason() == backup.ReasonLocationUnavailable })
	consistently(t, 2*time.Second, "no backup asked for and the worker kept", func() bool {
		return len(ours()) == 0 && len(h.workers("workers")) == 1
	})
	if c := waiting(); !strings.Contains(c.Message, "the removal of pool workers (1 machines) waits for a backup, and none can be taken") {
		t.Errorf("condition message %q does not say what waits and why", c.Message)
	}
	stop()

	// Killed right after recording the backup's name, before asking Velero.
	killed := h.runKilledAt("agent-b", plan.OpBackup, plan.StepCreateBackup, func() { setLocation("Available") }, withBackups)
	if !killed {
		t.Fatal("the agent was not killed")
	}
	raw := h.ledgerEntries()[seedledger.BackupEntryName(change)]
	if raw == "" {
		t.Fatalf("no ledger entry for the backup: %v", h.ledgerEntries())
	}
	entry := seedledger.Decode(map[string]string{"x": raw})["x"]
	if n := len(ours()); n != 0 {
		t.Fatalf("%d backups asked for by an agent killed before asking", n)
	}

	h.startAgent("agent-c", withBackups)
	eventually(t, 30*time.Second, "the recorded backup asked for", func() bool { return len(ours()) == 1 })
	b := ours()[0]
	if b.GetName() != entry.Backup {
		t.Fatalf("backup %s asked for; the ledger recorded %s", b.GetName(), entry.Backup)
	}
	if loc, _, _ := unstructured.NestedString(b.Object, "spec", "storageLocation"); loc != manifests.VeleroLocation {
		t.Errorf("backup goes to location %q, want %q", loc, manifests.VeleroLocation)
	}
	setBackup := func(status map[string]any) {
		t.Helper()
		got, err := backups.Get(ctx, entry.Backup, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got.Object["status"] = status
		if _, err := backups.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setBackup(map[string]any{"phase": "InProgress"})
	eventually(t, 30*time.Second, "the removal waiting for the backup in progress", func() bool { return waitingReason() == backup.ReasonBackupInProgress })
	if n := len(h.workers("workers")); n != 1 {
		t.Fatalf("%d workers while the backup is in progress, want 1", n)
	}

	setBackup(map[string]any{"phase": "Completed", "completionTimestamp": time.Now().UTC().Format(time.RFC3339),
		"progress": map[string]any{"itemsBackedUp": int64(120), "totalItems": int64(120)}})
	eventually(t, time.Minute, "the pool's machine deleted and the record forgotten", func() bool {
		_, recorded := h.ledgerEntries()[seedledger.BackupEntryName(change)]
		return len(h.workers("workers")) == 0 && !recorded
	})
	if got := snaps.backups(); len(got) != 1 || got[0] != entry.Backup {
		t.Errorf("etcd snapshots taken for %v, want one, for %s", got, entry.Backup)
	}
	if len(h.events("BackupAdmitted")) == 0 {
		t.Error("no BackupAdmitted event")
	}
	if n := len(ours()); n != 1 {
		t.Errorf("%d backups for the change, want exactly 1", n)
	}
	eventually(t, 30*time.Second, "nothing waiting", func() bool {
		c := waiting()
		return c != nil && c.Status == "False"
	})
}
