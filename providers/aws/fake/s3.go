package fake

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// S3 is an in-memory S3 with buckets, objects, tags, public-access blocks
// and default encryption, listings by prefix, and S3's error codes
// (NoSuchBucket, BucketAlreadyOwnedByYou, BucketAlreadyExists for a name
// another account holds, BucketNotEmpty). Bucket names are global, as in
// S3: every caller is DefaultAccountID, and TakeBucketName makes a name
// another account's. It also
// presigns GET URLs (without signing them) and answers STS
// GetCallerIdentity for the default account.
type S3 struct {
	mu      sync.Mutex
	clock   *Clock
	buckets map[string]*bucket
	calls   map[string]int
	faults  map[string][]Fault
	// PageSize bounds ListObjectsV2 answers.
	PageSize int
	// SessionToken, when set, goes into presigned URLs as
	// X-Amz-Security-Token, as temporary credentials (an instance
	// profile's) put it there; it makes them as long as real ones.
	SessionToken string
}

type bucket struct {
	// account owns the bucket; requests from any other get AccessDenied.
	account string
	region  string
	tags    []s3types.Tag
	// publicAccess and encryption are as last put; nil means never put.
	publicAccess *s3types.PublicAccessBlockConfiguration
	encryption   *s3types.ServerSideEncryptionConfiguration
	objects      map[string][]byte
}

// Bucket is what the fake holds about one bucket, for tests to check.
type Bucket struct {
	Account      string
	Region       string
	Tags         map[string]string
	PublicAccess *s3types.PublicAccessBlockConfiguration
	Encryption   *s3types.ServerSideEncryptionConfiguration
	Objects      int
}

// Bucket describes bucket name, or reports false when there is none.
func (f *S3) Bucket(name string) (Bucket, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.buckets[name]
	if b == nil {
		return Bucket{}, false
	}
	tags := map[string]string{}
	for _, t := range b.tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return Bucket{Account: b.account, Region: b.region, Tags: tags, PublicAccess: b.publicAccess,
		Encryption: b.encryption, Objects: len(b.objects)}, true
}

// TakeBucketName makes bucket name exist in another account, as when
// someone else holds a name first: bucket names are global.
func (f *S3) TakeBucketName(name, account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buckets[name] = &bucket{account: account, region: "us-east-1", objects: map[string][]byte{}}
}

// PutTestObject stores an object directly, as another writer (Velero, the
// etcd snapshotter) would.
func (f *S3) PutTestObject(b, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if bk := f.buckets[b]; bk != nil {
		bk.objects[key] = data
	}
}

// NewS3 returns an empty S3.
func NewS3(clock *Clock) *S3 {
	f := &S3{clock: clock}
	f.Reset()
	return f
}

// Reset forgets everything.
func (f *S3) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buckets = map[string]*bucket{}
	f.calls = map[string]int{}
	f.faults = map[string][]Fault{}
	f.PageSize = 1000
	f.SessionToken = ""
}

// InjectFault queues faults for the next calls of op.
func (f *S3) InjectFault(op string, faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = append(f.faults[op], faults...)
}

// Calls is how many times op was called.
func (f *S3) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Buckets lists bucket names.
func (f *S3) Buckets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedKeys(f.buckets)
}

// Object returns an object's content.
func (f *S3) Object(b, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if bk := f.buckets[b]; bk != nil {
		v, ok := bk.objects[key]
		return v, ok
	}
	return nil, false
}

func s3Op[O any](f *S3, name string, do func() (*O, error)) (*O, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[name]++
	var after error
	if q := f.faults[name]; len(q) > 0 {
		f.faults[name] = q[1:]
		if !q[0].AfterApply {
			return nil, q[0].Err
		}
		after = q[0].Err
	}
	out, err := do()
	if err != nil {
		return nil, err
	}
	if after != nil {
		return nil, after
	}
	return out, nil
}

func noSuchBucket(name string) error {
	return APIError("NoSuchBucket", "The specified bucket %s does not exist", name)
}

// ownBucket is the caller's bucket name, or S3's error: NoSuchBucket when
// no account holds the name, AccessDenied when another does.
func (f *S3) ownBucket(name string) (*bucket, error) {
	b := f.buckets[name]
	if b == nil {
		return nil, noSuchBucket(name)
	}
	if b.account != DefaultAccountID {
		return nil, APIError("AccessDenied", "Access Denied")
	}
	return b, nil
}

func (f *S3) CreateBucket(_ context.Context, in *s3.CreateBucketInput, _ ...func(*s3.Options)) (*s3.CreateBucketOutput, error) {
	return s3Op(f, "CreateBucket", func() (*s3.CreateBucketOutput, error) {
		name := aws.ToString(in.Bucket)
		if len(name) < 3 || len(name) > 63 {
			return nil, APIError("InvalidBucketName", "The specified bucket is not valid.")
		}
		region := "us-east-1"
		if c := in.CreateBucketConfiguration; c != nil && c.LocationConstraint != "" {
			region = string(c.LocationConstraint)
		}
		if b := f.buckets[name]; b != nil {
			switch {
			case b.account != DefaultAccountID:
				return nil, APIError("BucketAlreadyExists", "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")
			case region == "us-east-1" && b.region == "us-east-1":
				// us-east-1 answers its owner's create again with success.
				return &s3.CreateBucketOutput{Location: aws.String("/" + name)}, nil
			default:
				return nil, APIError("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
			}
		}
		f.buckets[name] = &bucket{account: DefaultAccountID, region: region, objects: map[string][]byte{}}
		return &s3.CreateBucketOutput{Location: aws.String("/" + name)}, nil
	})
}

func (f *S3) PutBucketTagging(_ context.Context, in *s3.PutBucketTaggingInput, _ ...func(*s3.Options)) (*s3.PutBucketTaggingOutput, error) {
	return s3Op(f, "PutBucketTagging", func() (*s3.PutBucketTaggingOutput, error) {
		b, err := f.ownBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		b.tags = in.Tagging.TagSet
		return &s3.PutBucketTaggingOutput{}, nil
	})
}

func (f *S3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	var body []byte
	if in.Body != nil {
		var err error
		if body, err = io.ReadAll(in.Body); err != nil {
			return nil, err
		}
	}
	return s3Op(f, "PutObject", func() (*s3.PutObjectOutput, error) {
		b, err := f.ownBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		if in.ContentLength != nil && *in.ContentLength != int64(len(body)) {
			return nil, APIError("IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
		}
		b.objects[aws.ToString(in.Key)] = body
		return &s3.PutObjectOutput{}, nil
	})
}

func (f *S3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return s3Op(f, "ListObjectsV2", func() (*s3.ListObjectsV2Output, error) {
		b, err := f.ownBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		var keys []string
		for _, k := range sortedKeys(b.objects) {
			if strings.HasPrefix(k, aws.ToString(in.Prefix)) {
				keys = append(keys, k)
			}
		}
		start := 0
		if t := aws.ToString(in.ContinuationToken); t != "" {
			start = sort.SearchStrings(keys, t)
		}
		page := f.PageSize
		if m := aws.ToInt32(in.MaxKeys); m > 0 && int(m) < page {
			page = int(m)
		}
		end := min(start+page, len(keys))
		out := &s3.ListObjectsV2Output{IsTruncated: aws.Bool(end < len(keys)), Prefix: in.Prefix, KeyCount: aws.Int32(int32(end - start))}
		for _, k := range keys[start:end] {
			out.Contents = append(out.Contents, s3types.Object{Key: aws.String(k), Size: aws.Int64(int64(len(b.objects[k])))})
		}
		if end < len(keys) {
			out.NextContinuationToken = aws.String(keys[end])
		}
		return out, nil
	})
}

func (f *S3) DeleteObjects(_ context.Context, in *s3.DeleteObjectsInput, _ ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	return s3Op(f, "DeleteObjects", func() (*s3.DeleteObjectsOutput, error) {
		b, err := f.ownBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		if len(in.Delete.Objects) > 1000 {
			return nil, APIError("MalformedXML", "more than 1000 keys")
		}
		for _, o := range in.Delete.Objects {
			delete(b.objects, aws.ToString(o.Key))
		}
		return &s3.DeleteObjectsOutput{}, nil
	})
}

func (f *S3) DeleteBucket(_ context.Context, in *s3.DeleteBucketInput, _ ...func(*s3.Options)) (*s3.DeleteBucketOutput, error) {
	return s3Op(f, "DeleteBucket", func() (*s3.DeleteBucketOutput, error) {
		name := aws.ToString(in.Bucket)
		b, err := f.ownBucket(name)
		if err != nil {
			return nil, err
		}
		if len(b.objects) > 0 {
			return nil, APIError("BucketNotEmpty", "The bucket you tried to delete is not empty")
		}
		delete(f.buckets, name)
		return &s3.DeleteBucketOutput{}, nil
	})
}

func (f *S3) PutPublicAccessBlock(_ context.Context, in *s3.PutPublicAccessBlockInput, _ ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error) {
	return s3Op(f, "PutPublicAccessBlock", func() (*s3.PutPublicAccessBlockOutput, error) {
		b, err := f.ownBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		if in.PublicAccessBlockConfiguration == nil {
			return nil, APIError("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
		}
		c := *in.PublicAccessBlockConfiguration
		b.publicAccess = &c
		return &s3.PutPublicAccessBlockOutput{}, nil
	})
}

func (f *S3) PutBucketEncryption(_ context.Context, in *s3.PutBucketEncryptionInput, _ ...func(*s3.Options)) (*s3.PutBucketEncryptionOutput, error) {
	return s3Op(f, "PutBucketEncryption", func() (*s3.PutBucketEncryptionOutput, error) {
		b, err := f.ownBucket(aws.ToString(in.Bucket))
		if err != nil {
			return nil, err
		}
		c := in.ServerSideEncryptionConfiguration
		if c == nil || len(c.Rules) == 0 || c.Rules[0].ApplyServerSideEncryptionByDefault == nil {
			return nil, APIError("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
		}
		cp := *c
		b.encryption = &cp
		return &s3.PutBucketEncryptionOutput{}, nil
	})
}

// PresignGetObject returns an unsigned URL of the object's form, with the
// expiry a real presigned URL would carry.
func (f *S3) PresignGetObject(_ context.Context, in *s3.GetObjectInput, opts ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error) {
	var o s3.PresignOptions
	for _, fn := range opts {
		fn(&o)
	}
	f.mu.Lock()
	f.calls["PresignGetObject"]++
	token := f.SessionToken
	f.mu.Unlock()
	q := url.Values{"X-Amz-Expires": {fmt.Sprint(int(o.Expires / time.Second))}, "X-Amz-Signature": {"fake"}}
	if token != "" {
		q.Set("X-Amz-Security-Token", token)
	}
	if f.clock != nil {
		q.Set("X-Amz-Date", f.clock.Now().UTC().Format("20060102T150405Z"))
	}
	u := fmt.Sprintf("https://%s.s3.amazonaws.com/%s?%s", aws.ToString(in.Bucket), aws.ToString(in.Key), q.Encode())
	return &v4.PresignedHTTPRequest{URL: u, Method: "GET"}, nil
}

// GetCallerIdentity answers for a user of the default account.
func (f *S3) GetCallerIdentity(_ context.Context, _ *sts.GetCallerIdentityInput, _ ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	f.mu.Lock()
	f.calls["GetCallerIdentity"]++
	f.mu.Unlock()
	return &sts.GetCallerIdentityOutput{
		Account: aws.String(DefaultAccountID),
		Arn:     aws.String("arn:aws:iam::" + DefaultAccountID + ":user/seed"),
		UserId:  aws.String("AIDAFAKE"),
	}, nil
}
