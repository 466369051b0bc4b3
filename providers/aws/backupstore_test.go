package aws

import (
	"context"
	"strings"
	"sync"
	"testing"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws/fake"
)

// seedCopy is the provider as the seed builds it: it may create the store.
func seedCopy(o *Options) { o.CreatesBackupStore = true }

func TestEnsureBackupStoreCreatesAPrivateEncryptedBucketApartFromTheCluster(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, seedCopy)
	if !e.p.Capabilities().KeepsBackupStore {
		t.Fatal("KeepsBackupStore is false")
	}
	s, err := e.p.EnsureBackupStore(ctx)
	if err != nil {
		t.Fatalf("EnsureBackupStore: %v", err)
	}
	want := providers.BackupStore{
		Endpoint: "https://s3." + testRegion + ".amazonaws.com",
		Bucket:   backupBucketName(fake.DefaultAccountID, testRegion, "demo"),
		Region:   testRegion,
	}
	if s != want {
		t.Errorf("store = %+v, want %+v (no keys: pods sign with the instance role)", s, want)
	}
	b, ok := e.s3.Bucket(s.Bucket)
	if !ok {
		t.Fatalf("bucket %s was not made; buckets: %v", s.Bucket, e.s3.Buckets())
	}
	if b.Region != testRegion {
		t.Errorf("region = %s", b.Region)
	}
	// Tagged with the cluster, but not as something the cluster owns:
	// whatever removes a cluster's resources by their tags leaves it.
	if len(b.Tags) != 1 || b.Tags[tagBackupsOf] != "demo" {
		t.Errorf("tags = %v, want only %s=demo", b.Tags, tagBackupsOf)
	}
	pa := b.PublicAccess
	if pa == nil || !*pa.BlockPublicAcls || !*pa.IgnorePublicAcls || !*pa.BlockPublicPolicy || !*pa.RestrictPublicBuckets {
		t.Errorf("public access is not blocked in full: %+v", pa)
	}
	if enc := b.Encryption; enc == nil || enc.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != s3types.ServerSideEncryptionAes256 {
		t.Errorf("default encryption = %+v, want SSE-S3", enc)
	}
	if strings.Contains(e.logs.String(), "Created bucket for staged images") {
		t.Error("the cluster's own bucket was made too: the store must not need it")
	}

	// Found again, by this process and by a new one.
	for i, p := range []*provider{e.p, e.restart(t)} {
		again, err := p.EnsureBackupStore(ctx)
		if err != nil || again != s {
			t.Errorf("call %d: %+v, %v; want %+v", i+2, again, err, s)
		}
	}
	if got := e.s3.Buckets(); len(got) != 1 {
		t.Errorf("buckets = %v, want one", got)
	}
}

func TestBackupStoreEndpointIsThePartitionsRegionalOne(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":     "https://s3.us-east-1.amazonaws.com",
		"eu-west-1":     "https://s3.eu-west-1.amazonaws.com",
		"cn-north-1":    "https://s3.cn-north-1.amazonaws.com.cn",
		"us-gov-west-1": "https://s3.us-gov-west-1.amazonaws.com",
	} {
		got, err := s3Endpoint(context.Background(), region)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", region, got, err, want)
		}
	}
}

func TestBackupBucketNameFitsS3AndNoClusterBucketTakesIt(t *testing.T) {
	const account = "123456789012"
	long := strings.Repeat("a", 63)
	for _, c := range []string{"demo", long, strings.Repeat("ab-", 21)} {
		n := backupBucketName(account, "ap-southeast-2", c)
		if len(n) > 63 || strings.ToLower(n) != n || strings.HasSuffix(n, "-") || strings.Contains(n, "--") {
			t.Errorf("cluster %q: bucket name %q (%d characters)", c, n, len(n))
		}
		if !strings.Contains(n, "-backups-") {
			t.Errorf("%q does not say it holds backups", n)
		}
	}
	if backupBucketName(account, "eu-west-1", long) == backupBucketName(account, "eu-west-1", long[:62]+"b") {
		t.Error("two long names collide")
	}
	if backupBucketName(account, "eu-west-1", "demo") == backupBucketName(account, "eu-west-2", "demo") ||
		backupBucketName(account, "eu-west-1", "demo") == backupBucketName("210987654321", "eu-west-1", "demo") {
		t.Error("the name does not depend on the region and the account")
	}
	// DestroyInfrastructure deletes bucketName of the cluster it destroys:
	// no cluster's may be another's backup bucket.
	for _, c := range []string{"demo", "demo-backups", "backups"} {
		for _, other := range []string{"demo", "demo-backups", "backups"} {
			if bucketName(account, "eu-west-1", c) == backupBucketName(account, "eu-west-1", other) {
				t.Errorf("cluster %s's bucket is cluster %s's backup bucket", c, other)
			}
		}
	}
}

func TestTwoCallersEnsuringTheBackupStoreAtOnceShareOneBucket(t *testing.T) {
	for _, region := range []string{testRegion, "us-east-1"} {
		t.Run(region, func(t *testing.T) {
			e := newEnv(t, seedCopy, func(o *Options) { o.Region = region })
			callers := []*provider{e.p, e.restart(t)}
			stores := make([]providers.BackupStore, len(callers))
			errs := make([]error, len(callers))
			var wg sync.WaitGroup
			for i, p := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					stores[i], errs[i] = p.EnsureBackupStore(context.Background())
				}()
			}
			wg.Wait()
			for i := range callers {
				if errs[i] != nil {
					t.Fatalf("caller %d: %v", i, errs[i])
				}
			}
			if stores[0] != stores[1] {
				t.Errorf("callers disagree: %+v and %+v", stores[0], stores[1])
			}
			if got := e.s3.Buckets(); len(got) != 1 || got[0] != stores[0].Bucket {
				t.Errorf("buckets = %v, want only %s", got, stores[0].Bucket)
			}
			if n := e.s3.Calls("CreateBucket"); n != 2 {
				t.Errorf("CreateBucket called %d times, want 2 (one made it, one found it made)", n)
			}
			if b, _ := e.s3.Bucket(stores[0].Bucket); b.Encryption == nil || b.PublicAccess == nil {
				t.Errorf("the bucket is not configured: %+v", b)
			}
		})
	}
}

func TestAgentCopyFindsTheBackupStoreButNeverCreatesIt(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t) // as the agent builds it
	_, err := e.p.EnsureBackupStore(ctx)
	if !providers.IsNotFound(err) {
		t.Fatalf("err = %v (kind %q), want NotFound", err, providers.KindOf(err))
	}
	if !strings.Contains(err.Error(), "seed up") {
		t.Errorf("error does not say what makes the store: %v", err)
	}
	if n := e.s3.Calls("CreateBucket"); n != 0 || len(e.s3.Buckets()) != 0 {
		t.Errorf("the agent's copy made a bucket (%d CreateBucket calls)", n)
	}

	// The seed makes it; the agent's copy then finds it, with one
	// listing (which the agent policy allows) and no write.
	seedOpts := e.opts
	seedOpts.CreatesBackupStore = true
	seed, err := newProvider(ctx, seedOpts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := seed.EnsureBackupStore(ctx)
	if err != nil {
		t.Fatalf("seed's EnsureBackupStore: %v", err)
	}
	writes := func() int {
		return e.s3.Calls("CreateBucket") + e.s3.Calls("PutBucketTagging") + e.s3.Calls("PutPublicAccessBlock") + e.s3.Calls("PutBucketEncryption")
	}
	before := writes()
	got, err := e.p.EnsureBackupStore(ctx)
	if err != nil || got != want {
		t.Fatalf("agent's copy: %+v, %v; want %+v", got, err, want)
	}
	if writes() != before {
		t.Errorf("the agent's copy wrote to S3 (%d calls)", writes()-before)
	}
}

func TestBackupBucketNameHeldByAnotherAccount(t *testing.T) {
	ctx := context.Background()
	name := backupBucketName(fake.DefaultAccountID, testRegion, "demo")
	for _, tc := range []struct {
		name string
		mods []func(*Options)
	}{
		{"seed", []func(*Options){seedCopy}},
		{"agent", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mods...)
			e.s3.TakeBucketName(name, "999999999999")
			_, err := e.p.EnsureBackupStore(ctx)
			if !providers.IsInvalid(err) {
				t.Errorf("err = %v (kind %q), want Invalid: only a person can fix this", err, providers.KindOf(err))
			}
			if b, _ := e.s3.Bucket(name); b.Encryption != nil || len(b.Tags) != 0 {
				t.Errorf("another account's bucket was configured: %+v", b)
			}
		})
	}
}

func TestBackupBucketNotYetVisibleAfterCreateIsTransient(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, seedCopy)
	e.s3.InjectFault("PutBucketEncryption", fake.Fault{Err: fake.APIError("NoSuchBucket", "The specified bucket does not exist")})
	_, err := e.p.EnsureBackupStore(ctx)
	if !providers.IsTransient(err) || providers.IsNotFound(err) {
		t.Fatalf("err = %v (kind %q), want Transient: the bucket was just made", err, providers.KindOf(err))
	}
	if _, err := e.p.EnsureBackupStore(ctx); err != nil {
		t.Fatalf("second call: %v", err)
	}
}

func TestDestroyKeepsTheBackupBucketAndANewClusterFindsIt(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, seedCopy)
	e.ensure(t)
	if err := e.p.StageImage(ctx, providers.StagedImage{Name: "agent", Data: strings.NewReader("tar"), Size: 3}); err != nil {
		t.Fatalf("StageImage: %v", err)
	}
	s, err := e.p.EnsureBackupStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.s3.PutTestObject(s.Bucket, "velero/backups/b1/velero-backup.json", []byte("{}"))
	e.s3.PutTestObject(s.Bucket, "etcd/demo/b1/snapshot.db", []byte("etcd"))
	cluster := bucketName(fake.DefaultAccountID, testRegion, "demo")
	if _, ok := e.s3.Bucket(cluster); !ok {
		t.Fatalf("the cluster's bucket %s was not made", cluster)
	}

	if err := e.p.DestroyInfrastructure(ctx); err != nil {
		t.Fatalf("DestroyInfrastructure: %v", err)
	}
	if _, ok := e.s3.Bucket(cluster); ok {
		t.Errorf("the cluster's bucket %s is left", cluster)
	}
	b, ok := e.s3.Bucket(s.Bucket)
	if !ok || b.Objects != 2 {
		t.Fatalf("the backup bucket went with the cluster (kept: %v, objects: %d)", ok, b.Objects)
	}

	// The cluster made again under the same name: the seed and its agent
	// find the same bucket with the same backups.
	again := e.restart(t)
	e.ensure(t)
	if got, err := again.EnsureBackupStore(ctx); err != nil || got != s {
		t.Errorf("seed after rebuild: %+v, %v; want %+v", got, err, s)
	}
	e.opts.CreatesBackupStore = false
	if got, err := e.restart(t).EnsureBackupStore(ctx); err != nil || got != s {
		t.Errorf("agent after rebuild: %+v, %v; want %+v", got, err, s)
	}
	if data, ok := e.s3.Object(s.Bucket, "etcd/demo/b1/snapshot.db"); !ok || string(data) != "etcd" {
		t.Errorf("snapshot = %q, %v", data, ok)
	}
}

func TestDeleteBackupStoreEmptiesAndDeletesTheBucket(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, seedCopy)
	e.s3.PageSize = 2 // more objects than one listing holds
	e.ensure(t)
	s, err := e.p.EnsureBackupStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"velero/backups/b1/a", "velero/backups/b1/b", "velero/backups/b2/a", "etcd/demo/b1/snapshot.db", "etcd/demo/b2/snapshot.db"} {
		e.s3.PutTestObject(s.Bucket, k, []byte("x"))
	}
	cluster := bucketName(fake.DefaultAccountID, testRegion, "demo")

	if err := e.p.DeleteBackupStore(ctx); err != nil {
		t.Fatalf("DeleteBackupStore: %v", err)
	}
	if _, ok := e.s3.Bucket(s.Bucket); ok {
		t.Error("the backup bucket is left")
	}
	if _, ok := e.s3.Bucket(cluster); !ok {
		t.Error("DeleteBackupStore took the cluster's bucket too")
	}
	if !strings.Contains(e.logs.String(), "Deleting the backup bucket") {
		t.Error("no log line says the backups are being deleted")
	}
	// Again, and on a new process: nothing to delete is success.
	if err := e.restart(t).DeleteBackupStore(ctx); err != nil {
		t.Errorf("second DeleteBackupStore: %v", err)
	}
	// The agent's copy does not bring it back.
	e.opts.CreatesBackupStore = false
	if _, err := e.restart(t).EnsureBackupStore(ctx); !providers.IsNotFound(err) {
		t.Errorf("agent after delete: %v, want NotFound", err)
	}
}
