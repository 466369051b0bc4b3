package docker

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/seedhq/seed/providers"
)

const testStoreImage = "versity/versitygw:test"

func TestEnsureBackupStoreCreatesStartsAndAttachesTheStore(t *testing.T) {
	f := newFakeEngine(testImage, testLBImage, testStoreImage)
	dir := filepath.Join(t.TempDir(), "backups", "demo")
	p, _ := newTestProvider(t, f, Options{LBImage: testLBImage, BackupDir: dir, BackupImage: testStoreImage})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	store, err := p.EnsureBackupStore(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := f.byName("demo-backups")
	if !ok {
		t.Fatal("no container demo-backups")
	}
	if c.State != stateRunning || c.req.HostConfig.NetworkMode != "seed-demo-backups" || c.IPs["seed-demo"] == "" {
		t.Errorf("store: state %s, network %s, addresses %v; want running, on its own network and the cluster's",
			c.State, c.req.HostConfig.NetworkMode, c.IPs)
	}
	if _, owned := c.Labels[providers.LabelCluster]; owned || c.Labels[LabelBackupsOf] != "demo" || c.Labels[LabelBackupDir] != dir {
		t.Errorf("labels %v: want no %s (the store outlives the cluster), %s=demo and its directory", c.Labels, providers.LabelCluster, LabelBackupsOf)
	}
	if want := []string{dir + "/data:/data", dir + "/iam:/iam"}; !slices.Equal(c.req.HostConfig.Binds, want) {
		t.Errorf("binds = %v, want %v", c.req.HostConfig.Binds, want)
	}
	if store.Endpoint != "http://"+c.IPs["seed-demo"]+":7070" || store.Bucket != BackupBucket || store.Region == "" ||
		store.AccessKeyID == "" || len(store.SecretAccessKey) < 32 {
		t.Errorf("store = %+v", store)
	}
	if fi, err := os.Stat(filepath.Join(dir, "data", BackupBucket)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("bucket directory: %v, %v; want a directory private to the user", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "credentials.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v, %v; want mode 0600", fi, err)
	}

	// Found stopped, the agent's copy (no directory, no image) says so and
	// leaves it; the seed's starts it; found running and attached, nothing
	// is done; the agent's copy then finds the same.
	f.mu.Lock()
	f.containers[c.ID].State = stateExited
	f.mu.Unlock()
	agent, _ := newTestProvider(t, f, Options{})
	_, err = agent.EnsureBackupStore(ctx(t))
	mustKind(t, err, providers.KindTransient, "container demo-backups is exited, so no backup can be written: `seed up` or `docker start demo-backups` starts it again")
	if c, _ := f.byName("demo-backups"); c.State != stateExited {
		t.Fatalf("the agent's copy left the store %s, want it exited", c.State)
	}
	for _, q := range []*provider{p, p, agent} {
		again, err := q.EnsureBackupStore(ctx(t))
		if err != nil || again != store {
			t.Fatalf("EnsureBackupStore again = %+v, %v; want %+v", again, err, store)
		}
	}
	if f.Calls("ContainerCreate") != 2 || f.Calls("ContainerStart") != 3 || f.Calls("NetworkConnect") != 1 {
		t.Errorf("%d creates (load balancer and store), %d starts, %d connects; want 2, 3 (load balancer, store, store again), 1",
			f.Calls("ContainerCreate"), f.Calls("ContainerStart"), f.Calls("NetworkConnect"))
	}

	// Destroying the cluster detaches the store and leaves it, its network
	// and its backups; a cluster made again under the name gets them back,
	// under the same keys.
	marker := filepath.Join(dir, "data", BackupBucket, "velero", "backup")
	if err := os.MkdirAll(filepath.Dir(marker), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if c, ok := f.byName("demo-backups"); !ok || c.IPs["seed-demo"] != "" || c.State != stateRunning {
		t.Fatalf("after DestroyInfrastructure: store found %v, %+v; want it running, off the cluster's network", ok, c)
	}
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	again, err := p.EnsureBackupStore(ctx(t))
	if err != nil || again.AccessKeyID != store.AccessKeyID || again.SecretAccessKey != store.SecretAccessKey {
		t.Fatalf("EnsureBackupStore of the new cluster = %+v, %v; want the old keys", again, err)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "kept" {
		t.Fatalf("backup after DestroyInfrastructure: %q, %v", b, err)
	}

	// Deleting it removes the container, its network and the backups.
	if err := p.DestroyInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteBackupStore(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if containers, networks, _ := f.counts(); containers != 0 || networks != 0 {
		t.Errorf("after DeleteBackupStore: %d containers, %d networks; want none", containers, networks)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("backup directory after DeleteBackupStore: %v; want it gone", err)
	}
	if err := p.DeleteBackupStore(ctx(t)); err != nil {
		t.Errorf("DeleteBackupStore of no store = %v, want success", err)
	}
}

func TestEnsureBackupStoreErrors(t *testing.T) {
	t.Run("the agent's copy does not create the store", func(t *testing.T) {
		f := newFakeEngine(testImage, testLBImage)
		p, _ := newTestProvider(t, f, Options{LBImage: testLBImage})
		if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
			t.Fatal(err)
		}
		_, err := p.EnsureBackupStore(ctx(t))
		mustKind(t, err, providers.KindNotFound, "seed up")
	})
	t.Run("a missing image says how to build it", func(t *testing.T) {
		f := newFakeEngine(testImage, testLBImage)
		p, _ := newTestProvider(t, f, Options{LBImage: testLBImage, BackupDir: t.TempDir(), BackupImage: testStoreImage})
		if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
			t.Fatal(err)
		}
		_, err := p.EnsureBackupStore(ctx(t))
		mustKind(t, err, providers.KindInvalid, "hack/build-versitygw.sh")
	})
	t.Run("a container of that name that is not the store", func(t *testing.T) {
		f := newFakeEngine(testImage, testLBImage, testStoreImage)
		p, _ := newTestProvider(t, f, Options{LBImage: testLBImage, BackupDir: t.TempDir(), BackupImage: testStoreImage})
		if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
			t.Fatal(err)
		}
		f.addContainer("demo-backups", "c0ffee", stateRunning, map[string]string{"app": "mine"})
		_, err := p.EnsureBackupStore(ctx(t))
		mustKind(t, err, providers.KindInvalid, "not the backup store")
		if err := p.DeleteBackupStore(ctx(t)); !providers.IsInvalid(err) {
			t.Errorf("DeleteBackupStore of someone else's container = %v, want Invalid", err)
		}
	})
	t.Run("unreadable keys are not replaced", func(t *testing.T) {
		f := newFakeEngine(testImage, testLBImage, testStoreImage)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "credentials.json"), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		p, _ := newTestProvider(t, f, Options{LBImage: testLBImage, BackupDir: dir, BackupImage: testStoreImage})
		if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
			t.Fatal(err)
		}
		_, err := p.EnsureBackupStore(ctx(t))
		mustKind(t, err, providers.KindInvalid, "holds no keys")
	})
}
