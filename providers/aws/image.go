package aws

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/seedhq/seed/providers"
)

const (
	// debianOwner is the AWS account the Debian cloud team publishes
	// official AMIs from (commercial partition).
	debianOwner = "136693071363"
	// presignTTL bounds presigned URLs given to a booting control plane.
	presignTTL    = time.Hour
	agentImageKey = "images/agent.tar"
)

// image is a resolved AMI.
type image struct {
	id         string
	arch       string
	rootDevice string
}

// instanceType is what the provider needs to know of an instance type.
type instanceType struct {
	arch      string
	vcpus     int32
	memoryMiB int64
}

// describeTypes returns the named instance types, describing those not seen
// before in one call.
func (p *provider) describeTypes(ctx context.Context, names []string) (map[string]instanceType, error) {
	out := map[string]instanceType{}
	var missing []types.InstanceType
	p.mu.Lock()
	for _, n := range names {
		if t, ok := p.instanceTypes[n]; ok {
			out[n] = t
		} else {
			missing = append(missing, types.InstanceType(n))
		}
	}
	p.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	res, err := p.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: missing})
	if err != nil {
		return nil, classify("describing instance types", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, it := range res.InstanceTypes {
		t := instanceType{arch: "x86_64"}
		if it.ProcessorInfo != nil {
			archs := map[types.ArchitectureType]bool{}
			for _, a := range it.ProcessorInfo.SupportedArchitectures {
				archs[a] = true
			}
			if !archs[types.ArchitectureTypeX8664] && archs[types.ArchitectureTypeArm64] {
				t.arch = "arm64"
			}
		}
		if it.VCpuInfo != nil {
			t.vcpus = aws.ToInt32(it.VCpuInfo.DefaultVCpus)
		}
		if it.MemoryInfo != nil {
			t.memoryMiB = aws.ToInt64(it.MemoryInfo.SizeInMiB)
		}
		p.instanceTypes[string(it.InstanceType)] = t
		out[string(it.InstanceType)] = t
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, providers.NewError(providers.KindInvalid, "describing instance types",
				fmt.Errorf("instance type %q does not exist in %s", n, p.spec.Region))
		}
	}
	return out, nil
}

// image returns the AMI for an architecture: spec.ami when set (whose
// architecture must match), else the newest official Debian 12 image.
func (p *provider) image(ctx context.Context, arch string) (image, error) {
	p.mu.Lock()
	img, ok := p.images[arch]
	p.mu.Unlock()
	if ok {
		return img, nil
	}
	const op = "resolving the machine image"
	in := &ec2.DescribeImagesInput{}
	if p.spec.AMI != "" {
		in.ImageIds = []string{p.spec.AMI}
	} else {
		in.Owners = []string{debianOwner}
		in.Filters = []types.Filter{
			filter("name", "debian-12-"+debArch(arch)+"-*"),
			filter("architecture", arch),
			filter("state", "available"),
			filter("root-device-type", "ebs"),
			filter("virtualization-type", "hvm"),
		}
		in.MaxResults = aws.Int32(p.pageSize)
	}
	var images []types.Image
	for {
		res, err := p.ec2.DescribeImages(ctx, in)
		if err != nil {
			if p.spec.AMI != "" && isCode(err, "InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable") {
				return image{}, providers.NewError(providers.KindInvalid, op,
					fmt.Errorf("spec.provider.aws.ami %q does not exist in %s: %w", p.spec.AMI, p.spec.Region, err))
			}
			return image{}, classify(op, err)
		}
		images = append(images, res.Images...)
		if aws.ToString(res.NextToken) == "" {
			break
		}
		in.NextToken = res.NextToken
	}
	if len(images) == 0 {
		if p.spec.AMI != "" {
			return image{}, providers.NewError(providers.KindInvalid, op,
				fmt.Errorf("spec.provider.aws.ami %q is not visible in %s", p.spec.AMI, p.spec.Region))
		}
		return image{}, providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("no Debian 12 %s image in %s: set spec.provider.aws.ami", arch, p.spec.Region))
	}
	sort.Slice(images, func(i, j int) bool {
		return aws.ToString(images[i].CreationDate) > aws.ToString(images[j].CreationDate)
	})
	im := images[0]
	img = image{id: aws.ToString(im.ImageId), arch: string(im.Architecture), rootDevice: aws.ToString(im.RootDeviceName)}
	if img.arch != arch {
		return image{}, providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("spec.provider.aws.ami %s is %s but the machine type needs %s", img.id, img.arch, arch))
	}
	if img.rootDevice == "" {
		img.rootDevice = "/dev/xvda"
	}
	p.mu.Lock()
	p.images[arch] = img
	p.mu.Unlock()
	return img, nil
}

func debArch(arch string) string {
	if arch == "x86_64" {
		return "amd64"
	}
	return arch
}

// account is the caller's AWS account and partition.
type account struct {
	id        string
	partition string
}

func (p *provider) callerAccount(ctx context.Context) (account, error) {
	p.mu.Lock()
	a := p.account
	p.mu.Unlock()
	if a != nil {
		return *a, nil
	}
	out, err := p.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return account{}, classify("finding the AWS account", err)
	}
	parsed, err := arn.Parse(aws.ToString(out.Arn))
	if err != nil {
		return account{}, providers.NewError(providers.KindInvalid, "finding the AWS account", err)
	}
	a = &account{id: aws.ToString(out.Account), partition: parsed.Partition}
	p.mu.Lock()
	p.account = a
	p.mu.Unlock()
	return *a, nil
}

func (p *provider) bucketName(ctx context.Context) (string, error) {
	a, err := p.callerAccount(ctx)
	if err != nil {
		return "", err
	}
	return bucketName(a.id, p.spec.Region, p.cluster), nil
}

// ensureBucket creates the cluster's private bucket. New buckets block
// public access and encrypt at rest by default.
func (p *provider) ensureBucket(ctx context.Context) (string, error) {
	const op = "creating the cluster's bucket"
	name, err := p.bucketName(ctx)
	if err != nil {
		return "", err
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if p.spec.Region != "us-east-1" {
		// us-east-1 rejects its own name as a location constraint.
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{
			LocationConstraint: s3types.BucketLocationConstraint(p.spec.Region),
		}
	}
	_, err = p.s3.CreateBucket(ctx, in)
	switch {
	case err == nil:
		p.log.Info("Created bucket for the agent image and control-plane bootstrap", "bucket", name)
	case isCode(err, codeBucketAlreadyOwnedByYou):
	case isCode(err, codeBucketAlreadyExists):
		return "", providers.NewError(providers.KindInvalid, op, fmt.Errorf("bucket name %s is taken by another account: %w", name, err))
	default:
		return "", classify(op, err)
	}
	_, err = p.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{
		Bucket: aws.String(name),
		Tagging: &s3types.Tagging{TagSet: []s3types.Tag{
			{Key: aws.String(ownershipKey(p.cluster)), Value: aws.String(ownedValue)},
			{Key: aws.String(providers.LabelCluster), Value: aws.String(p.cluster)},
		}},
	})
	if err != nil {
		return "", classify(op, err)
	}
	p.mu.Lock()
	p.bucket = name
	p.mu.Unlock()
	return name, nil
}

// StageAgentImage uploads the agent image tarball to the cluster's bucket
// and returns a presigned GET URL, valid for an hour. The control plane
// this process creates afterwards downloads it on first boot and imports
// it into containerd. The URL is a credential: do not log it.
func (p *provider) StageAgentImage(ctx context.Context, r io.Reader, size int64) (string, error) {
	const op = "staging the agent image"
	name, err := p.ensureBucket(ctx)
	if err != nil {
		return "", err
	}
	p.log.Info("Uploading agent image", "bucket", name, "key", agentImageKey, "bytes", size)
	_, err = p.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(name),
		Key:           aws.String(agentImageKey),
		Body:          r,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String("application/x-tar"),
	})
	if err != nil {
		return "", classify(op, err)
	}
	p.mu.Lock()
	p.imageKey = agentImageKey
	p.mu.Unlock()
	return p.presignGet(ctx, name, agentImageKey)
}

func (p *provider) presignGet(ctx context.Context, bucket, key string) (string, error) {
	req, err := p.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)},
		s3.WithPresignExpires(presignTTL))
	if err != nil {
		return "", classify("presigning "+key, err)
	}
	return req.URL, nil
}

// stagedImageURL is a fresh URL of the image this process staged, or "".
func (p *provider) stagedImageURL(ctx context.Context) (string, error) {
	p.mu.Lock()
	key, bucket := p.imageKey, p.bucket
	p.mu.Unlock()
	if key == "" || bucket == "" {
		return "", nil
	}
	return p.presignGet(ctx, bucket, key)
}

// stagePayload keeps a control plane's bootstrap out of its user data: any
// pod that reaches IMDS could read user data for the life of the instance,
// while the presigned URL that replaces it expires. It returns "" when this
// process knows no bucket; the bootstrap then goes inline.
func (p *provider) stagePayload(ctx context.Context, machine, payload string) (string, error) {
	p.mu.Lock()
	bucket := p.bucket
	p.mu.Unlock()
	if bucket == "" {
		return "", nil
	}
	key := "bootstrap/" + machine
	_, err := p.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          strings.NewReader(payload),
		ContentLength: aws.Int64(int64(len(payload))),
	})
	if err != nil {
		return "", classify("staging the bootstrap of "+machine, err)
	}
	return p.presignGet(ctx, bucket, key)
}

// emptyAndDeleteBucket removes every object, then the bucket.
func (p *provider) emptyAndDeleteBucket(ctx context.Context, name string) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(name)}
	for {
		res, err := p.s3.ListObjectsV2(ctx, in)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(res.Contents) > 0 {
			var ids []s3types.ObjectIdentifier
			for _, o := range res.Contents {
				ids = append(ids, s3types.ObjectIdentifier{Key: o.Key})
			}
			del, err := p.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
				Bucket: aws.String(name),
				Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)},
			})
			if err != nil {
				return err
			}
			if len(del.Errors) > 0 {
				e := del.Errors[0]
				return fmt.Errorf("deleting %s: %s", aws.ToString(e.Key), aws.ToString(e.Code))
			}
		}
		if !aws.ToBool(res.IsTruncated) {
			break
		}
		in.ContinuationToken = res.NextContinuationToken
	}
	_, err := p.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return nil
}
