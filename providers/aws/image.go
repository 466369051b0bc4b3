package aws

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
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
	// presignTTL bounds presigned URLs given to booting machines.
	presignTTL = time.Hour
	// Staged images live under two prefixes: those every machine imports,
	// and those only control planes import. The agent's policy lets it list
	// and read the first only.
	allImagesPrefix          = "images/all/"
	controlPlaneImagesPrefix = "images/control-plane/"
	// imageListTTL is how long a listing of staged images is reused before
	// S3 is asked again.
	imageListTTL = 5 * time.Minute
)

var (
	stagedNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// stagedKeyRE is the key of an image machines import: <prefix><name>.tar.
	stagedKeyRE = regexp.MustCompile(`^(images/(?:all|control-plane)/)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.tar$`)
)

// stagedURL is a staged image's name and a presigned URL of its tarball.
type stagedURL struct {
	name string
	url  string
}

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
		p.log.Info("Created bucket for staged images and control-plane bootstraps", "bucket", name)
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

// StageImage uploads an image tarball to the cluster's bucket, under
// images/all/ when every machine imports it and images/control-plane/ when
// only control planes do. Machines launched afterwards, by this process or
// another, download it on first boot through a presigned URL and import it
// into containerd before their bootstrap runs.
func (p *provider) StageImage(ctx context.Context, img providers.StagedImage) error {
	op := "staging image " + img.Name
	if !stagedNameRE.MatchString(img.Name) {
		return providers.NewError(providers.KindInvalid, op, fmt.Errorf("image name %q must be lower-case letters, digits and dashes", img.Name))
	}
	if img.Data == nil || img.Size < 0 {
		return providers.NewError(providers.KindInvalid, op, errors.New("the image has no data"))
	}
	bucket, err := p.ensureBucket(ctx)
	if err != nil {
		return err
	}
	prefix := allImagesPrefix
	if !img.Workers {
		prefix = controlPlaneImagesPrefix
	}
	key := prefix + img.Name + ".tar"
	p.log.Info("Uploading image for machines to import on first boot", "image", img.Name, "workers", img.Workers, "bucket", bucket, "key", key, "bytes", img.Size)
	_, err = p.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          img.Data,
		ContentLength: aws.Int64(img.Size),
		ContentType:   aws.String("application/x-tar"),
	})
	if err != nil {
		return classify(op, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.imageLists[prefix]
	if l == nil {
		l = &imageList{}
		p.imageLists[prefix] = l
	}
	l.staged, l.missing = true, false
	if !slices.Contains(l.keys, key) {
		l.keys = append(l.keys, key)
		sort.Strings(l.keys)
	}
	return nil
}

// imagePrefixes are where the images a machine of this role imports are.
func imagePrefixes(role providers.Role) []string {
	if role == providers.RoleControlPlane {
		return []string{controlPlaneImagesPrefix, allImagesPrefix}
	}
	return []string{allImagesPrefix}
}

// imageList is what this process knows of the images under one prefix.
type imageList struct {
	keys []string
	at   time.Time
	// staged: this process uploaded there, so it knows the keys without
	// asking S3 again.
	staged bool
	// missing: the bucket did not exist when listed.
	missing bool
}

// stagedImages returns a fresh presigned URL for every image a machine of
// this role imports. Images this process staged are known; the others (the
// agent's case: the seed staged them) are listed, and the listing is kept
// for imageListTTL. Presigning makes no call. Without a bucket, or with no
// image every machine imports, the launch goes on with a warning: the
// machines boot, but without the pod network image their Nodes stay
// NotReady.
func (p *provider) stagedImages(ctx context.Context, role providers.Role) ([]stagedURL, error) {
	bucket, err := p.bucketName(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, prefix := range imagePrefixes(role) {
		l, err := p.imageList(ctx, bucket, prefix)
		if err != nil {
			return nil, err
		}
		if prefix == allImagesPrefix && len(l.keys) == 0 {
			why := "the cluster's bucket holds no image under " + allImagesPrefix
			if l.missing {
				why = "the cluster's bucket does not exist"
			}
			p.log.Info("Launching "+string(role)+" machines without the pod network image: "+why+"; their Nodes will stay NotReady", "bucket", bucket)
		}
		keys = append(keys, l.keys...)
	}
	var out []stagedURL
	seen := map[string]bool{}
	for _, k := range keys {
		name := strings.TrimSuffix(path.Base(k), ".tar")
		if seen[name] {
			// Under both prefixes: the control plane's own copy, listed first, wins.
			continue
		}
		seen[name] = true
		url, err := p.presignGet(ctx, bucket, k)
		if err != nil {
			return nil, err
		}
		out = append(out, stagedURL{name: name, url: url})
	}
	return out, nil
}

// imageList returns the image keys under prefix, from memory when this
// process staged them or listed them less than imageListTTL ago.
func (p *provider) imageList(ctx context.Context, bucket, prefix string) (imageList, error) {
	now := p.clock.Now()
	p.mu.Lock()
	if l := p.imageLists[prefix]; l != nil && (l.staged || now.Sub(l.at) < imageListTTL) {
		c := *l
		c.keys = slices.Clone(l.keys)
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()

	l := imageList{at: now}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	for {
		res, err := p.s3.ListObjectsV2(ctx, in)
		if isCode(err, codeNoSuchBucket) {
			l.missing, l.keys = true, nil
			break
		}
		if err != nil {
			return imageList{}, classify("listing the images staged in bucket "+bucket, err)
		}
		for _, o := range res.Contents {
			k := aws.ToString(o.Key)
			if m := stagedKeyRE.FindStringSubmatch(k); m == nil || m[1] != prefix {
				p.log.Info("Ignoring object among staged images: machines import only <name>.tar", "bucket", bucket, "key", k)
				continue
			}
			l.keys = append(l.keys, k)
		}
		if !aws.ToBool(res.IsTruncated) {
			break
		}
		in.ContinuationToken = res.NextContinuationToken
	}
	sort.Strings(l.keys)

	p.mu.Lock()
	defer p.mu.Unlock()
	if cur := p.imageLists[prefix]; cur != nil && cur.staged {
		// This process staged an image while the listing was under way.
		c := *cur
		c.keys = slices.Clone(cur.keys)
		return c, nil
	}
	stored := l
	p.imageLists[prefix] = &stored
	return l, nil
}

func (p *provider) presignGet(ctx context.Context, bucket, key string) (string, error) {
	req, err := p.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)},
		s3.WithPresignExpires(presignTTL))
	if err != nil {
		return "", classify("presigning "+key, err)
	}
	return req.URL, nil
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
