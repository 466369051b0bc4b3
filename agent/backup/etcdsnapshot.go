package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/seedhq/seed/agent/etcd"
)

// The objects of one etcd snapshot, under EtcdSnapshotPrefix(cluster,
// backup) in the store's bucket.
const (
	SnapshotObject = "snapshot.db"
	PKIObject      = "pki.tar.gz"
	// MetaObject is written last: its presence means the others are
	// complete.
	MetaObject = "meta.json"
)

// SnapshotMeta describes an etcd snapshot taken for a Velero backup. It is
// stored as meta.json beside the snapshot.
type SnapshotMeta struct {
	Cluster           string `json:"cluster"`
	Backup            string `json:"backup"`
	Node              string `json:"node,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	EtcdVersion       string `json:"etcdVersion,omitempty"`
	// Size and SHA256 (hex) are of snapshot.db, etcd's trailer included.
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	TakenAt time.Time `json:"takenAt"`
}

// EtcdSnapshotPrefix is where the snapshot for a backup goes:
// etcd/<cluster>/<backup>/, beside Velero's velero/ prefix and outside it,
// so that Velero's sync neither sees nor removes it.
func EtcdSnapshotPrefix(cluster, backup string) string {
	return "etcd/" + cluster + "/" + backup + "/"
}

// DamagedSnapshotError says that a snapshot's meta.json is there but the
// snapshot it describes is missing or is not the one it describes. Taking
// the snapshot again replaces it.
type DamagedSnapshotError struct {
	Key    string
	Reason string
}

func (e *DamagedSnapshotError) Error() string {
	return fmt.Sprintf("etcd snapshot %s is damaged: %s", e.Key, e.Reason)
}

// IsDamagedSnapshot reports whether err is, or wraps, a
// DamagedSnapshotError.
func IsDamagedSnapshot(err error) bool {
	var e *DamagedSnapshotError
	return errors.As(err, &e)
}

// objectAPI holds the S3 calls the snapshot code makes; *s3.Client
// satisfies it. They are the permissions the store's keys need on the
// etcd/ prefix.
type objectAPI interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// objects is a store's bucket, seen through the S3 API.
type objects struct {
	api    objectAPI
	bucket string
}

// openStore returns an S3 client for st: its URL, path-style (what
// versitygw and most S3-compatible stores need), signed for its region
// with the default profile of its credentials.
func openStore(st Store) (*objects, error) {
	if st.URL == "" || st.Bucket == "" {
		return nil, errors.New("the backup store has no URL or no bucket")
	}
	k, err := parseSharedCredentials(st.Credentials)
	if err != nil {
		return nil, err
	}
	region := st.Region
	if region == "" {
		region = "us-east-1"
	}
	var creds aws.CredentialsProvider = credentials.NewStaticCredentialsProvider(k.AccessKeyID, k.SecretAccessKey, k.SessionToken)
	if k == (keys{}) {
		// A store without keys takes the machine's identity: on AWS the
		// control plane's instance role, which Velero's plugin uses too.
		creds = aws.NewCredentialsCache(ec2rolecreds.New())
	}
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(st.URL),
		Region:       region,
		UsePathStyle: true,
		Credentials:  creds,
		// Downloads are hashed here and compared with the meta; the SDK's
		// own check of the store's checksum would fail them with an error
		// that cannot be told from a broken connection.
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return &objects{api: c, bucket: st.Bucket}, nil
}

func checkNames(cluster, backup string) error {
	for _, n := range []struct{ what, v string }{{"cluster", cluster}, {"backup", backup}} {
		if n.v == "" || n.v == "." || n.v == ".." || strings.ContainsAny(n.v, "/\\") {
			return fmt.Errorf("etcd snapshot: %q is no %s name for an object key", n.v, n.what)
		}
	}
	return nil
}

// SaveEtcdSnapshot stores snap, the etcd snapshot meta describes, with a
// copy of pkiDir, under EtcdSnapshotPrefix(meta.Cluster, meta.Backup):
// snapshot.db, pki.tar.gz, then meta.json. meta.Size and meta.SHA256 must
// be snap's (etcd.SnapshotInfo's): the snapshot is sent with its sha256,
// so that the store refuses anything else, and the checksum the store then
// holds is read back and compared. Saving again for the same backup
// replaces all three; meta.json is removed first, so that a reader never
// finds the old one beside a new snapshot.
//
// snap is best an *os.File: S3 over plain HTTP signs the body's sha256,
// which takes a second read, and any other reader is held in memory for it.
// An object is put in one request, which S3 limits to 5 GiB (etcd's
// default quota is 2 GiB).
func SaveEtcdSnapshot(ctx context.Context, st Store, snap io.Reader, pkiDir string, meta SnapshotMeta) error {
	if err := checkNames(meta.Cluster, meta.Backup); err != nil {
		return err
	}
	sum, err := hex.DecodeString(meta.SHA256)
	if err != nil || len(sum) != sha256.Size || meta.Size <= 0 {
		return fmt.Errorf("etcd snapshot for backup %s: want its size and hex sha256 in the meta, got %d and %q", meta.Backup, meta.Size, meta.SHA256)
	}
	body, ok := snap.(io.ReadSeeker)
	if !ok {
		b, err := io.ReadAll(snap)
		if err != nil {
			return fmt.Errorf("reading the etcd snapshot: %w", err)
		}
		body = bytes.NewReader(b)
	}
	// Every key of the control plane goes into this archive, as it must:
	// restoring onto a new machine needs the same CAs and service-account
	// keys. It is a disaster-recovery copy, as secret as the snapshot
	// itself (which holds every Secret in clear); the store must be private.
	pki, err := tarGz(pkiDir)
	if err != nil {
		return fmt.Errorf("archiving %s: %w", pkiDir, err)
	}
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	o, err := openStore(st)
	if err != nil {
		return err
	}
	prefix := EtcdSnapshotPrefix(meta.Cluster, meta.Backup)
	if _, err := o.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(prefix + MetaObject)}); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing the previous %s%s: %w", prefix, MetaObject, err)
	}
	if err := o.put(ctx, prefix+SnapshotObject, body, meta.Size, sum, "application/octet-stream"); err != nil {
		return err
	}
	got, err := o.sha256Of(ctx, prefix+SnapshotObject, meta.Size)
	if err != nil {
		return err
	}
	if got != meta.SHA256 {
		return &DamagedSnapshotError{Key: prefix + SnapshotObject, Reason: fmt.Sprintf("the store holds sha256 %s, want %s", got, meta.SHA256)}
	}
	pkiSum := sha256.Sum256(pki)
	if err := o.put(ctx, prefix+PKIObject, bytes.NewReader(pki), int64(len(pki)), pkiSum[:], "application/gzip"); err != nil {
		return err
	}
	metaSum := sha256.Sum256(metaJSON)
	return o.put(ctx, prefix+MetaObject, bytes.NewReader(metaJSON), int64(len(metaJSON)), metaSum[:], "application/json")
}

// put writes one object with its sha256, which the store checks.
func (o *objects) put(ctx context.Context, key string, body io.ReadSeeker, size int64, sum []byte, contentType string) error {
	_, err := o.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket:            aws.String(o.bucket),
		Key:               aws.String(key),
		Body:              body,
		ContentLength:     aws.Int64(size),
		ContentType:       aws.String(contentType),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(sum)),
	})
	if err != nil {
		return fmt.Errorf("writing %s to bucket %s: %w", key, o.bucket, err)
	}
	return nil
}

// sha256Of returns the hex sha256 of the object at key, which must be
// size bytes long: the store's own checksum when it keeps a sha256 of the
// whole object, else the hash of a download.
func (o *objects) sha256Of(ctx context.Context, key string, size int64) (string, error) {
	head, err := o.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(key), ChecksumMode: s3types.ChecksumModeEnabled})
	if isNotFound(err) {
		return "", &DamagedSnapshotError{Key: key, Reason: "the object is missing"}
	}
	if err != nil {
		return "", fmt.Errorf("reading %s's checksum: %w", key, err)
	}
	if got := aws.ToInt64(head.ContentLength); got != size {
		return "", &DamagedSnapshotError{Key: key, Reason: fmt.Sprintf("the store holds %d bytes, want %d", got, size)}
	}
	// A multipart checksum ("…-N") is a checksum of checksums, and
	// COMPOSITE is the same; neither is the object's sha256.
	if c := aws.ToString(head.ChecksumSHA256); c != "" && !strings.Contains(c, "-") && head.ChecksumType != s3types.ChecksumTypeComposite {
		if b, err := base64.StdEncoding.DecodeString(c); err == nil && len(b) == sha256.Size {
			return hex.EncodeToString(b), nil
		}
	}
	h := sha256.New()
	if err := o.download(ctx, key, h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// open starts a download of the object at key.
func (o *objects) open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := o.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(key)})
	if isNotFound(err) {
		return nil, &DamagedSnapshotError{Key: key, Reason: "the object is missing"}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return out.Body, nil
}

// download copies the object at key to w.
func (o *objects) download(ctx context.Context, key string, w io.Writer) error {
	body, err := o.open(ctx, key)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	return nil
}

// readErr remembers the error of the reader it wraps, telling a failed
// download from a bad snapshot.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

// readMeta returns the meta.json under prefix, and false if there is none.
func (o *objects) readMeta(ctx context.Context, cluster, backup string) (SnapshotMeta, bool, error) {
	key := EtcdSnapshotPrefix(cluster, backup) + MetaObject
	var b bytes.Buffer
	if err := o.download(ctx, key, &b); err != nil {
		if IsDamagedSnapshot(err) { // missing
			return SnapshotMeta{}, false, nil
		}
		return SnapshotMeta{}, false, err
	}
	var m SnapshotMeta
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		return SnapshotMeta{}, false, &DamagedSnapshotError{Key: key, Reason: "not JSON: " + err.Error()}
	}
	if m.Cluster != cluster || m.Backup != backup {
		return m, false, &DamagedSnapshotError{Key: key, Reason: fmt.Sprintf("it describes backup %s of cluster %s", m.Backup, m.Cluster)}
	}
	return m, true, nil
}

// EtcdSnapshotStored reports whether the snapshot for backup is stored
// whole: its meta.json, which is written last, is there, and so are
// pki.tar.gz and snapshot.db, with the size and sha256 the meta gives (the
// store's checksum, or a download where the store keeps none). No meta.json
// is false with no error. A meta.json whose snapshot is missing or differs
// is false with a DamagedSnapshotError; taking the snapshot again mends it.
func EtcdSnapshotStored(ctx context.Context, st Store, cluster, backup string) (SnapshotMeta, bool, error) {
	if err := checkNames(cluster, backup); err != nil {
		return SnapshotMeta{}, false, err
	}
	o, err := openStore(st)
	if err != nil {
		return SnapshotMeta{}, false, err
	}
	m, ok, err := o.readMeta(ctx, cluster, backup)
	if !ok || err != nil {
		return m, false, err
	}
	prefix := EtcdSnapshotPrefix(cluster, backup)
	if _, err := o.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(prefix + PKIObject)}); err != nil {
		if isNotFound(err) {
			return m, false, &DamagedSnapshotError{Key: prefix + PKIObject, Reason: "the object is missing"}
		}
		return m, false, fmt.Errorf("looking for %s%s: %w", prefix, PKIObject, err)
	}
	got, err := o.sha256Of(ctx, prefix+SnapshotObject, m.Size)
	if err != nil {
		return m, false, err
	}
	if got != m.SHA256 {
		return m, false, &DamagedSnapshotError{Key: prefix + SnapshotObject, Reason: fmt.Sprintf("the store holds sha256 %s, want %s", got, m.SHA256)}
	}
	return m, true, nil
}

// VerifyEtcdSnapshot downloads the snapshot for backup and checks every
// byte: its sha256 and size against meta.json, and etcd's own trailer
// against the database, as etcdutl does before a restore. Unlike
// EtcdSnapshotStored it trusts no checksum the store keeps, so it also finds
// a file changed behind the store's back. No snapshot is a
// DamagedSnapshotError too: there is nothing to restore.
func VerifyEtcdSnapshot(ctx context.Context, st Store, cluster, backup string) (SnapshotMeta, error) {
	if err := checkNames(cluster, backup); err != nil {
		return SnapshotMeta{}, err
	}
	o, err := openStore(st)
	if err != nil {
		return SnapshotMeta{}, err
	}
	m, ok, err := o.readMeta(ctx, cluster, backup)
	if err != nil {
		return m, err
	}
	prefix := EtcdSnapshotPrefix(cluster, backup)
	if !ok {
		return m, &DamagedSnapshotError{Key: prefix + MetaObject, Reason: "the object is missing"}
	}
	key := prefix + SnapshotObject
	body, err := o.open(ctx, key)
	if err != nil {
		return m, err
	}
	defer body.Close()
	r := &readErr{r: body}
	info, err := etcd.CheckSnapshot(r)
	if r.err != nil {
		return m, fmt.Errorf("reading %s: %w", key, r.err)
	}
	if err != nil {
		return m, &DamagedSnapshotError{Key: key, Reason: err.Error()}
	}
	if info.Size != m.Size || info.SHA256 != m.SHA256 {
		return m, &DamagedSnapshotError{Key: key, Reason: fmt.Sprintf("downloaded %d bytes with sha256 %s, want %d with %s", info.Size, info.SHA256, m.Size, m.SHA256)}
	}
	return m, nil
}

// isNotFound reports whether the store answered that the object does not
// exist: NoSuchKey from a GET, a bodiless 404 from a HEAD.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *s3types.NoSuchKey
	var nf *s3types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == 404 {
		var ae smithy.APIError
		// Not NoSuchBucket: a missing bucket is the store's fault, not a
		// missing snapshot.
		return !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchBucket"
	}
	return false
}

// tarGz archives dir as pki/…, so that `tar -xzf pki.tar.gz -C
// /etc/kubernetes` puts it back where kubeadm keeps it.
func tarGz(dir string) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets and the like are no part of a PKI
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = path.Join("pki", filepath.ToSlash(rel))
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SnapshotSource takes etcd snapshots; *etcd.Client is one.
type SnapshotSource interface {
	Snapshot(ctx context.Context, endpoints []string, w io.Writer) (etcd.SnapshotInfo, error)
	Status(ctx context.Context, endpoint string) (etcd.Status, error)
}

// Snapshotter takes the etcd snapshot for a backup and stores it.
type Snapshotter struct {
	Etcd SnapshotSource
	// PKIDir is the control plane's PKI, archived beside the snapshot
	// (/etc/kubernetes/pki).
	PKIDir string
	// TempDir holds the snapshot between etcd and the store: it needs room
	// for the whole database. The agent's is an emptyDir at /tmp.
	TempDir string
	// Now stamps TakenAt; time.Now when nil.
	Now func() time.Time
}

// tempName is the snapshot's file in TempDir. One name, truncated on every
// Take, so that a Take killed midway leaves no more than one file behind;
// Takes on one TempDir must therefore not overlap (the agent's leader takes
// one at a time).
const tempName = "etcd-snapshot.db"

// Take snapshots etcd from the first of endpoints that answers and saves
// the snapshot with SaveEtcdSnapshot. meta names the cluster, the backup,
// and what else the caller knows (Node, KubernetesVersion); Take fills in
// Size, SHA256, TakenAt when zero, and EtcdVersion when empty, from the
// member that sent the snapshot (left empty if it does not say). It
// returns the meta it stored.
func (s Snapshotter) Take(ctx context.Context, st Store, endpoints []string, meta SnapshotMeta) (SnapshotMeta, error) {
	if err := checkNames(meta.Cluster, meta.Backup); err != nil {
		return meta, err
	}
	if s.Etcd == nil || s.PKIDir == "" || s.TempDir == "" {
		return meta, errors.New("etcd snapshot: the Snapshotter needs Etcd, PKIDir and TempDir")
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	p := filepath.Join(s.TempDir, tempName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return meta, fmt.Errorf("etcd snapshot: %w", err)
	}
	defer func() {
		f.Close()
		_ = os.Remove(p)
	}()
	if meta.TakenAt.IsZero() {
		meta.TakenAt = now().UTC()
	}
	info, err := s.Etcd.Snapshot(ctx, endpoints, f)
	if err != nil {
		return meta, fmt.Errorf("taking the etcd snapshot for backup %s: %w", meta.Backup, err)
	}
	meta.Size, meta.SHA256 = info.Size, info.SHA256
	if meta.EtcdVersion == "" {
		// Only a label for whoever restores: a member that does not say
		// leaves it empty rather than failing a good snapshot.
		if status, err := s.Etcd.Status(ctx, info.Endpoint); err == nil {
			meta.EtcdVersion = status.Version
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return meta, fmt.Errorf("etcd snapshot: %w", err)
	}
	if err := SaveEtcdSnapshot(ctx, st, f, s.PKIDir, meta); err != nil {
		return meta, fmt.Errorf("storing the etcd snapshot for backup %s: %w", meta.Backup, err)
	}
	return meta, nil
}
