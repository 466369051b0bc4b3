package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/seedhq/seed/agent/etcd"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/testenv"
	"github.com/seedhq/seed/providers/registry"
)

// realStore runs the Docker provider's store (versitygw) for a cluster of
// its own, as seed up does, and returns it with its directory on this host.
func realStore(t *testing.T, ctx context.Context, prefix string) (st Store, cluster, dir string) {
	t.Helper()
	requireEnv(t, "SEED_BACKUP_STORE_IMAGE", "hack/build-versitygw.sh builds it")
	cluster = fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000)
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	spec, err := v1alpha1.Load(fmt.Appendf(nil, "apiVersion: %s\nkind: Cluster\nmetadata: {name: %s}\nspec: {provider: {docker: {}}}\n",
		v1alpha1.APIVersion, cluster), v1alpha1.ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := registry.New(ctx, spec, registry.Env{OnHost: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.EnsureInfrastructure(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and the store needs Docker: %v", err)
		}
		t.Skipf("no Docker engine (set CI=true to make this a failure): %v", err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = p.DestroyInfrastructure(c)
		_ = p.DeleteBackupStore(c)
	})
	s, err := p.EnsureBackupStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st = Store{URL: s.Endpoint, Bucket: s.Bucket, Region: s.Region, Credentials: SharedCredentials(s.AccessKeyID, s.SecretAccessKey)}
	o, err := openStore(st)
	if err != nil {
		t.Fatal(err)
	}
	// versitygw listens a moment after its container starts.
	await(t, ctx, "the store to serve its bucket", func() (bool, string) {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := o.api.(*s3.Client).HeadBucket(c, &s3.HeadBucketInput{Bucket: aws.String(st.Bucket)})
		return err == nil, fmt.Sprint(err)
	})
	return st, cluster, filepath.Join(data, "seed", "backups", cluster, "data", st.Bucket)
}

// fakePKI writes a small kubeadm-like PKI, keys included.
func fakePKI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"ca.crt": "CA CERT", "ca.key": "CA KEY", "sa.key": "SA KEY", "etcd/ca.crt": "ETCD CA", "etcd/healthcheck-client.key": "HC KEY"}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// untar reads a pki.tar.gz into name → content.
func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		got[h.Name] = string(c)
	}
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestEtcdSnapshotInTheRealStore takes a snapshot of a real etcd (testenv's)
// through its gateway and stores it in the Docker provider's versitygw
// store, beside Velero's prefix: it is found whole with the sha256 etcd's
// stream had, its PKI archive holds the keys, taking it again replaces it,
// a backup without one is not found, and a damaged one is told apart, by
// EtcdSnapshotStored when damaged through the S3 API and by
// VerifyEtcdSnapshot even when the file changed behind the store's back.
func TestEtcdSnapshotInTheRealStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, cluster, bucketDir := realStore(t, ctx, "seedsnap")
	env := testenv.Start(ctx, t)

	at := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	pki := fakePKI(t)
	s := Snapshotter{Etcd: &etcd.Client{HTTP: &http.Client{Timeout: 5 * time.Second}}, PKIDir: pki, TempDir: t.TempDir(),
		Now: func() time.Time { return at }}
	want := SnapshotMeta{Cluster: cluster, Backup: "seed-test-1", Node: "cp-1", KubernetesVersion: "v1.34.2"}

	start := time.Now()
	meta, err := s.Take(ctx, st, []string{"http://127.0.0.1:1", env.EtcdURL}, want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Figure: taking and storing a %d-byte etcd snapshot took %s", meta.Size, time.Since(start).Round(time.Millisecond))
	if meta.Size <= 0 || len(meta.SHA256) != 64 || !strings.HasPrefix(meta.EtcdVersion, "3.") || !meta.TakenAt.Equal(at) ||
		meta.Node != "cp-1" || meta.KubernetesVersion != "v1.34.2" {
		t.Fatalf("meta = %+v, want size, sha256, a 3.x etcd version, taken at %s and the caller's fields", meta, at)
	}
	if left, _ := os.ReadDir(s.TempDir); len(left) != 0 {
		t.Errorf("the temp dir holds %d files after Take, want none", len(left))
	}

	got, ok, err := EtcdSnapshotStored(ctx, st, cluster, "seed-test-1")
	if err != nil || !ok || got.SHA256 != meta.SHA256 || got.Size != meta.Size || !got.TakenAt.Equal(at) || got.EtcdVersion != meta.EtcdVersion {
		t.Fatalf("stored = %+v, %v, %v; want %+v, true", got, ok, err, meta)
	}
	if _, err := VerifyEtcdSnapshot(ctx, st, cluster, "seed-test-1"); err != nil {
		t.Fatalf("verifying a good snapshot: %v", err)
	}

	// On disk: under etcd/<cluster>/<backup>/, not under velero/, the
	// snapshot is the bytes etcd sent, and the archive holds the keys.
	dir := filepath.Join(bucketDir, "etcd", cluster, "seed-test-1")
	for _, name := range []string{SnapshotObject, PKIObject, MetaObject} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s is not in the store's directory: %v", name, err)
		}
	}
	if sum := fileSHA256(t, filepath.Join(dir, SnapshotObject)); sum != meta.SHA256 {
		t.Errorf("snapshot.db on disk has sha256 %s, want %s", sum, meta.SHA256)
	}
	tgz, err := os.ReadFile(filepath.Join(dir, PKIObject))
	if err != nil {
		t.Fatal(err)
	}
	if files := untar(t, tgz); files["pki/ca.key"] != "CA KEY" || files["pki/etcd/healthcheck-client.key"] != "HC KEY" || files["pki/sa.key"] != "SA KEY" {
		t.Errorf("pki.tar.gz holds %v, want every file of the PKI under pki/", files)
	}

	// A backup without a snapshot.
	if m, ok, err := EtcdSnapshotStored(ctx, st, cluster, "seed-test-none"); ok || err != nil {
		t.Errorf("a backup without a snapshot: %+v, %v, %v; want false and no error", m, ok, err)
	}
	if _, err := VerifyEtcdSnapshot(ctx, st, cluster, "seed-test-none"); !IsDamagedSnapshot(err) {
		t.Errorf("verifying a backup without a snapshot: %v, want a DamagedSnapshotError", err)
	}

	// Taken again, it replaces the first (etcd has moved on: the API
	// server writes leases).
	again, err := s.Take(ctx, st, []string{env.EtcdURL}, want)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := EtcdSnapshotStored(ctx, st, cluster, "seed-test-1"); err != nil || !ok || got.SHA256 != again.SHA256 {
		t.Fatalf("after taking it again: %+v, %v, %v; want sha256 %s", got, ok, err, again.SHA256)
	}

	// Damaged through the S3 API: one byte flipped, same size.
	o, err := openStore(st)
	if err != nil {
		t.Fatal(err)
	}
	key := EtcdSnapshotPrefix(cluster, "seed-test-1") + SnapshotObject
	good, err := os.ReadFile(filepath.Join(dir, SnapshotObject))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0x01
	if _, err := o.api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key), Body: bytes.NewReader(bad)}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := EtcdSnapshotStored(ctx, st, cluster, "seed-test-1"); ok || !IsDamagedSnapshot(err) {
		t.Errorf("a snapshot overwritten through S3: ok = %v, err = %v; want false and a DamagedSnapshotError", ok, err)
	} else {
		t.Logf("Overwritten through S3: %v", err)
	}
	if _, err := VerifyEtcdSnapshot(ctx, st, cluster, "seed-test-1"); !IsDamagedSnapshot(err) {
		t.Errorf("verifying a snapshot overwritten through S3: %v, want a DamagedSnapshotError", err)
	}

	// Damaged behind the store's back: the file itself changes, and the
	// store's own checksum, if it keeps one, goes stale.
	if _, err := s.Take(ctx, st, []string{env.EtcdURL}, want); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, SnapshotObject)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x01
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, ok, err = EtcdSnapshotStored(ctx, st, cluster, "seed-test-1")
	t.Logf("Changed on disk, EtcdSnapshotStored (which trusts the store's checksum when it keeps one) says %v, %v", ok, err)
	if _, err := VerifyEtcdSnapshot(ctx, st, cluster, "seed-test-1"); !IsDamagedSnapshot(err) {
		t.Errorf("verifying a snapshot changed on disk: %v, want a DamagedSnapshotError", err)
	}

	// A snapshot that is not what its meta says is refused by the store.
	wrong := meta
	wrong.Backup = "seed-test-2"
	err = SaveEtcdSnapshot(ctx, st, bytes.NewReader(bad), pki, wrong)
	if err == nil {
		t.Fatal("saving bytes that do not match the meta's sha256 succeeded")
	}
	t.Logf("Saving bytes that do not match the meta: %v", err)
	if _, ok, err := EtcdSnapshotStored(ctx, st, cluster, "seed-test-2"); ok || err != nil {
		t.Errorf("after a refused save: %v, %v; want no snapshot", ok, err)
	}
}

// What cannot be a snapshot's meta or key is refused before the store is
// asked.
func TestSaveEtcdSnapshotRefusesWhatCannotBeStored(t *testing.T) {
	st := Store{URL: "http://127.0.0.1:1", Bucket: "b", Credentials: SharedCredentials("a", "b")}
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		meta    SnapshotMeta
		wantErr string
	}{
		{"no cluster", SnapshotMeta{Backup: "b", Size: 1, SHA256: sum}, "cluster name"},
		{"a backup name with a slash", SnapshotMeta{Cluster: "c", Backup: "a/b", Size: 1, SHA256: sum}, "backup name"},
		{"a backup name of dots", SnapshotMeta{Cluster: "c", Backup: "..", Size: 1, SHA256: sum}, "backup name"},
		{"no size", SnapshotMeta{Cluster: "c", Backup: "b", SHA256: sum}, "size and hex sha256"},
		{"a sha256 that is not hex", SnapshotMeta{Cluster: "c", Backup: "b", Size: 1, SHA256: "xyz"}, "size and hex sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SaveEtcdSnapshot(context.Background(), st, strings.NewReader("x"), t.TempDir(), tt.meta)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
	if _, _, err := EtcdSnapshotStored(context.Background(), Store{URL: "http://127.0.0.1:1", Bucket: "b"}, "c", "b"); err == nil ||
		!strings.Contains(err.Error(), "credentials") {
		t.Errorf("a store without credentials: %v, want an error saying so", err)
	}
}
