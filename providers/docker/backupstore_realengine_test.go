package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/seedhq/seed/providers"
)

// requireStoreImage returns the backup store's image (hack/build-versitygw.sh,
// passed as SEED_BACKUP_STORE_IMAGE by hack/test.sh), skipping without it
// unless CI=true.
func requireStoreImage(t *testing.T) string {
	t.Helper()
	ref := os.Getenv("SEED_BACKUP_STORE_IMAGE")
	if ref == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and SEED_BACKUP_STORE_IMAGE is not set: build it with hack/build-versitygw.sh")
		}
		t.Skip("SEED_BACKUP_STORE_IMAGE is not set (hack/build-versitygw.sh builds it; CI=true makes this a failure)")
	}
	return ref
}

// TestRealEngineBackupStore runs the real versitygw image as the store and
// talks S3 to it from this host, at the address the cluster's pods use: it
// serves the bucket, comes back from a stop with its objects, outlives the
// cluster, and goes with DeleteBackupStore.
func TestRealEngineBackupStore(t *testing.T) {
	c := requireEngine(t)
	storeImage := requireStoreImage(t)
	balancer := lbImage(t, c)

	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	cluster := "seedtest-" + hex.EncodeToString(suffix)
	dir := filepath.Join(t.TempDir(), "backups", cluster)
	t.Cleanup(func() {
		removeByLabel(c, cluster)
		removeStore(c, cluster)
	})
	p, err := New(Options{ClusterName: cluster, LBImage: balancer, BackupDir: dir, BackupImage: storeImage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	store, err := p.EnsureBackupStore(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.New(s3.Options{
		BaseEndpoint: aws.String(store.Endpoint), Region: store.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(store.AccessKeyID, store.SecretAccessKey, ""),
	})
	put := func(key, body string) {
		t.Helper()
		if _, err := s3c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(store.Bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("PutObject %s: %v", key, err)
		}
	}
	get := func(key string) string {
		t.Helper()
		out, err := s3c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(store.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GetObject %s: %v", key, err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return string(b)
	}
	awaitServing(t, s3c, store.Bucket)
	put("velero/backups/one/velero-backup.json", "first")
	if got := get("velero/backups/one/velero-backup.json"); got != "first" {
		t.Fatalf("read back %q, want %q", got, "first")
	}
	// Wrong keys are refused.
	bad := s3.New(s3.Options{
		BaseEndpoint: aws.String(store.Endpoint), Region: store.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(store.AccessKeyID, "wrong", ""),
	})
	if _, err := bad.HeadBucket(ctx(t), &s3.HeadBucketInput{Bucket: aws.String(store.Bucket)}); err == nil {
		t.Error("HeadBucket with a wrong secret succeeded")
	}

	// Stopped (docker stop), it is started again with its objects.
	id := storeID(t, c, cluster)
	if err := c.do(ctx(t), "stopping the store", http.MethodPost, "/containers/"+id+"/stop", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ContainerInspect(ctx(t), id); err != nil || got.State == stateRunning {
		t.Fatalf("after stop: %+v, %v", got, err)
	}
	if store, err = p.EnsureBackupStore(ctx(t)); err != nil {
		t.Fatal(err)
	}
	s3c = s3.New(s3.Options{
		BaseEndpoint: aws.String(store.Endpoint), Region: store.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(store.AccessKeyID, store.SecretAccessKey, ""),
	})
	awaitServing(t, s3c, store.Bucket)
	if got := get("velero/backups/one/velero-backup.json"); got != "first" {
		t.Fatalf("after a restart read %q, want %q", got, "first")
	}

	// The cluster goes; the store, detached from its network, and the
	// object, a plain file, stay.
	if err := p.DestroyInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ContainerInspect(ctx(t), id); err != nil || got.State != stateRunning || got.IPs["seed-"+cluster] != "" {
		t.Fatalf("store after DestroyInfrastructure: %+v, %v; want it running, off the cluster's network", got, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "data", store.Bucket, "velero", "backups", "one", "velero-backup.json")); err != nil || string(b) != "first" {
		t.Fatalf("the object on disk: %q, %v", b, err)
	}

	if err := p.DeleteBackupStore(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerInspect(ctx(t), id); !providers.IsNotFound(err) {
		t.Errorf("store after DeleteBackupStore: %v, want it gone", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup directory after DeleteBackupStore: %v, want it gone", err)
	}
}

// awaitServing waits until the store answers for the bucket: versitygw
// listens a moment after its container starts.
func awaitServing(t *testing.T, s3c *s3.Client, bucket string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s3c.HeadBucket(c, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store does not serve bucket %s: %v", bucket, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func storeID(t *testing.T, c *client, cluster string) string {
	t.Helper()
	got, err := c.ContainerInspect(ctx(t), cluster+"-backups")
	if err != nil {
		t.Fatal(err)
	}
	return got.ID
}

// removeStore removes the store of cluster and its network, whatever the
// provider did or did not do.
func removeStore(c *client, cluster string) {
	cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	of := labelFilter(LabelBackupsOf, cluster)
	if cs, err := c.ContainerList(cctx, of); err == nil {
		for _, ct := range cs {
			_ = c.ContainerRemove(cctx, ct.ID)
		}
	}
	if ns, err := c.NetworkList(cctx, of); err == nil {
		for _, n := range ns {
			_ = c.NetworkRemove(cctx, n.ID)
		}
	}
}
