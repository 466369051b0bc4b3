package aws

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/seedhq/seed/providers"
)

// The backup store is a bucket of the cluster's own, apart from the
// cluster's bucket: DestroyInfrastructure empties and deletes that one, and
// never names this one, so backups outlive the cluster and a cluster made
// again under the same name, in the same account and region, finds them.
// Only DeleteBackupStore (`seed down --delete-backups`) removes it.
//
// The bucket carries neither the ownership tag nor seed.dev/cluster, which
// mark what goes with the cluster; tagBackupsOf ties it to the cluster
// instead, as the Docker provider's label of the same name ties its store.
//
// Pods sign their requests with the control plane's instance role: the
// store carries no keys. The agent policy (manifests/aws/agent-policy.json)
// lets that role read, write, list and delete under velero/ and etcd/ in
// this bucket, and nothing else in it; in particular not create, delete or
// reconfigure the bucket, which is why the agent's copy of the provider
// only looks for it. Its s3:ListBucket is limited by s3:prefix; that does
// not turn Velero's check for a backup that does not exist yet (HeadObject
// on velero/backups/<name>/...) into AccessDenied, because S3 decides
// between 404 and 403 with the key as s3:prefix (Ceph's RGW copied this
// from AWS in ceph/ceph#68577).
const (
	tagBackupsOf = "seed.dev/backups-of"
	// backupPrefixVelero is the BackupStorageLocation's prefix, and
	// backupPrefixEtcd the folder of the etcd snapshots taken with each
	// backup; the agent policy names both.
	backupPrefixVelero = "velero/"
	backupPrefixEtcd   = "etcd/"
)

// EnsureBackupStore implements providers.Provider. The seed creates the
// bucket, or finds it made; either way it puts the bucket's tags, its
// public-access block and its default encryption, so racing callers end
// with one bucket configured alike. The agent's copy, which may not create
// it, gets NotFound when it does not exist.
func (p *provider) EnsureBackupStore(ctx context.Context) (providers.BackupStore, error) {
	a, err := p.callerAccount(ctx)
	if err != nil {
		return providers.BackupStore{}, fmt.Errorf("ensuring the backup store: %w", err)
	}
	name := backupBucketName(a.id, p.spec.Region, p.cluster)
	op := "ensuring backup bucket " + name
	endpoint, err := s3Endpoint(ctx, p.spec.Region)
	if err != nil {
		return providers.BackupStore{}, providers.NewError(providers.KindInvalid, op, err)
	}
	if p.createsBackupStore {
		err = p.createBackupBucket(ctx, op, name)
	} else {
		err = p.findBackupBucket(ctx, op, name)
	}
	if err != nil {
		return providers.BackupStore{}, err
	}
	return providers.BackupStore{Endpoint: endpoint, Bucket: name, Region: p.spec.Region}, nil
}

// createBackupBucket makes the bucket, or accepts it made (by an earlier
// run, or by a caller racing this one), and configures it.
func (p *provider) createBackupBucket(ctx context.Context, op, name string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if p.spec.Region != "us-east-1" {
		// us-east-1 rejects its own name as a location constraint.
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{
			LocationConstraint: s3types.BucketLocationConstraint(p.spec.Region),
		}
	}
	_, err := p.s3.CreateBucket(ctx, in)
	switch {
	case err == nil:
		// us-east-1 answers its owner's create again with success, so
		// this line may repeat there; elsewhere it means this call made it.
		p.log.Info("Created the backup bucket: it is kept when the cluster is deleted", "bucket", name)
	case isCode(err, codeBucketAlreadyOwnedByYou):
	case isCode(err, codeBucketAlreadyExists):
		return providers.NewError(providers.KindInvalid, op, fmt.Errorf("bucket name %s is taken by another account: %w", name, err))
	default:
		return classify(op, err)
	}
	configure := []struct {
		what string
		put  func() error
	}{
		{"tagging it", func() error {
			_, err := p.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{
				Bucket:  aws.String(name),
				Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String(tagBackupsOf), Value: aws.String(p.cluster)}}},
			})
			return err
		}},
		{"blocking public access", func() error {
			_, err := p.s3.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
				Bucket: aws.String(name),
				PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
					BlockPublicAcls:       aws.Bool(true),
					IgnorePublicAcls:      aws.Bool(true),
					BlockPublicPolicy:     aws.Bool(true),
					RestrictPublicBuckets: aws.Bool(true),
				},
			})
			return err
		}},
		{"encrypting it at rest", func() error {
			// SSE-S3: backups and etcd snapshots hold every Secret in
			// clear, and objects written without headers get this.
			_, err := p.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
				Bucket: aws.String(name),
				ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
					Rules: []s3types.ServerSideEncryptionRule{{
						ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256},
					}},
				},
			})
			return err
		}},
	}
	for _, c := range configure {
		err := c.put()
		if isCode(err, codeNoSuchBucket) {
			// The bucket was just made or just found: S3 has not caught up
			// yet, or someone deleted it since. Either way, ask again.
			return providers.NewError(providers.KindTransient, op+": "+c.what,
				fmt.Errorf("S3 does not know the bucket yet: %w", err))
		}
		if err != nil {
			return classify(op+": "+c.what, err)
		}
	}
	return nil
}

// findBackupBucket checks that the bucket exists with the one request the
// agent policy allows on it without naming a key: a listing under velero/.
func (p *provider) findBackupBucket(ctx context.Context, op, name string) error {
	_, err := p.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(name), Prefix: aws.String(backupPrefixVelero), MaxKeys: aws.Int32(1),
	})
	switch {
	case err == nil:
		return nil
	case isCode(err, codeNoSuchBucket):
		return providers.NewError(providers.KindNotFound, op,
			fmt.Errorf("the backup bucket does not exist: `seed up` creates it when spec.backup is enabled: %w", err))
	case isCode(err, "AccessDenied"):
		return providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("the control plane's role may not list the bucket: the agent policy is older than the backup bucket, or another account holds the name; `seed up` puts the policy again: %w", err))
	default:
		return classify(op, err)
	}
}

// s3Endpoint is the regional S3 endpoint, as the SDK resolves it for the
// region's partition (https://s3.eu-west-1.amazonaws.com,
// https://s3.cn-north-1.amazonaws.com.cn). Pods reach it through the
// nodes' internet gateway, as they reach every AWS API.
func s3Endpoint(ctx context.Context, region string) (string, error) {
	ep, err := s3.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, s3.EndpointParameters{Region: aws.String(region)})
	if err != nil {
		return "", fmt.Errorf("resolving the S3 endpoint of region %s: %w", region, err)
	}
	return ep.URI.String(), nil
}

// DeleteBackupStore implements providers.Provider: it empties the backup
// bucket and deletes it. A bucket that does not exist is success.
func (p *provider) DeleteBackupStore(ctx context.Context) error {
	a, err := p.callerAccount(ctx)
	if err != nil {
		return fmt.Errorf("deleting the backup store: %w", err)
	}
	name := backupBucketName(a.id, p.spec.Region, p.cluster)
	p.log.Info("Deleting the backup bucket and every backup in it: asked to", "bucket", name)
	if err := p.emptyAndDeleteBucket(ctx, name); err != nil {
		return classify("deleting backup bucket "+name, err)
	}
	return nil
}
