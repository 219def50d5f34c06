package bucket

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/s3store"
)

// Options describe the bucket and how tusd's S3 store uses it.
type Options struct {
	Bucket string
	// Endpoint is the S3 API URL of a non-AWS server; "" means AWS S3.
	Endpoint string
	Region   string
	// PathStyle addresses the bucket as endpoint/bucket.
	PathStyle bool
	// Prefix is prepended to every object key.
	Prefix string
	// PartSize is tusd's preferred part size; MinPartSize the smallest part
	// but the last.
	PartSize, MinPartSize int64
	// MaxBufferedParts is how many parts of one request may wait on disk;
	// ConcurrentParts how many parts the process sends at once.
	MaxBufferedParts, ConcurrentParts int
	// TempDir is where parts wait before they are sent.
	TempDir string
	// Redirect makes Serve answer with a 302 to a presigned URL valid for
	// URLTTL instead of streaming the object.
	Redirect bool
	URLTTL   time.Duration
	// Credentials replaces the standard AWS chain (for embedding and
	// tests); nil means the chain.
	Credentials aws.CredentialsProvider
}

// Bucket is one configured bucket.
type Bucket struct {
	opts  Options
	store s3store.S3Store
	mc    *minio.Client
}

// New builds the clients. It does not contact the server; call Check.
func New(ctx context.Context, opts Options) (*Bucket, error) {
	load := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(opts.Region)}
	if opts.Credentials != nil {
		load = append(load, awsconfig.WithCredentialsProvider(opts.Credentials))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		// Newer SDKs add CRC checksums to every upload, which several
		// S3-compatible servers (R2, older MinIO, Ceph) reject or ignore.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})

	store := s3store.New(opts.Bucket, client)
	store.ObjectPrefix = opts.Prefix
	store.MetadataObjectPrefix = opts.Prefix
	store.PreferredPartSize = opts.PartSize
	store.MinPartSize = opts.MinPartSize
	store.MaxBufferedParts = int64(opts.MaxBufferedParts)
	store.TemporaryDirectory = opts.TempDir
	store.SetConcurrentPartUploads(opts.ConcurrentParts)

	mc, err := newMinio(opts, awsCfg.Credentials)
	if err != nil {
		return nil, err
	}
	return &Bucket{opts: opts, store: store, mc: mc}, nil
}

// newMinio builds the minio-go client on creds, the AWS config's provider:
// LoadDefaultConfig already wraps it, chain or explicit, in an
// aws.CredentialsCache, shared with the S3 client.
func newMinio(opts Options, creds aws.CredentialsProvider) (*minio.Client, error) {
	host, secure := "s3.amazonaws.com", true
	if opts.Region != "" && opts.Endpoint == "" {
		host = "s3." + opts.Region + ".amazonaws.com"
	}
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || u.Host == "" {
			return nil, errors.New("invalid S3 endpoint: want an http(s) URL")
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	lookup := minio.BucketLookupDNS
	if opts.PathStyle {
		lookup = minio.BucketLookupPath
	}
	mc, err := minio.New(host, &minio.Options{
		Creds:        credentials.New(&chainCreds{p: creds}),
		Secure:       secure,
		Region:       opts.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("creating S3 client: %w", err)
	}
	return mc, nil
}

// chainCreds hands minio-go the credentials the AWS chain resolves, so both
// clients authenticate the same way (profiles, roles, env).
type chainCreds struct {
	p   aws.CredentialsProvider
	exp time.Time
}

func (c *chainCreds) RetrieveWithCredContext(*credentials.CredContext) (credentials.Value, error) {
	return c.Retrieve()
}

func (c *chainCreds) Retrieve() (credentials.Value, error) {
	v, err := c.p.Retrieve(context.Background())
	if err != nil {
		return credentials.Value{}, fmt.Errorf("resolving AWS credentials: %w", err)
	}
	c.exp = time.Time{}
	if v.CanExpire {
		c.exp = v.Expires
	}
	return credentials.Value{
		AccessKeyID:     v.AccessKeyID,
		SecretAccessKey: v.SecretAccessKey,
		SessionToken:    v.SessionToken,
		Expiration:      c.exp,
		SignerType:      credentials.SignatureV4,
	}, nil
}

// IsExpired asks for a new value a minute early; the AWS cache beneath
// refreshes from the chain.
func (c *chainCreds) IsExpired() bool {
	return !c.exp.IsZero() && time.Now().Add(time.Minute).After(c.exp)
}

// Store returns tusd's S3 store for the bucket.
func (b *Bucket) Store() s3store.S3Store { return b.store }

// RegisterMetrics registers tusd's S3 request metrics.
func (b *Bucket) RegisterMetrics(reg prometheus.Registerer) { b.store.RegisterMetrics(reg) }

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.opts.Bucket }

// ErrNoBucket means the bucket does not exist.
var ErrNoBucket = errors.New("bucket does not exist")

// Check reports whether the bucket is reachable with these credentials.
// Its errors say what is wrong (unreachable, credentials refused, no such
// bucket) without any secret.
func (b *Bucket) Check(ctx context.Context) error {
	ok, err := b.mc.BucketExists(ctx, b.opts.Bucket)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "AccessDenied" {
			// HEAD answers carry no error body, so a wrong key and a
			// missing permission look alike; a GET tells them apart.
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for obj := range b.mc.ListObjects(lctx, b.opts.Bucket, minio.ListObjectsOptions{MaxKeys: 1}) {
				if obj.Err != nil {
					return describe(obj.Err)
				}
				break
			}
		}
		return describe(err)
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoBucket, b.opts.Bucket)
	}
	return nil
}

// Ensure checks the bucket and, when create is set, creates it if missing.
func (b *Bucket) Ensure(ctx context.Context, create bool) error {
	err := b.Check(ctx)
	if !errors.Is(err, ErrNoBucket) || !create {
		if errors.Is(err, ErrNoBucket) {
			return fmt.Errorf("%w; create it or start with --s3-create-bucket", err)
		}
		return err
	}
	if err := b.mc.MakeBucket(ctx, b.opts.Bucket, minio.MakeBucketOptions{Region: b.opts.Region}); err != nil {
		resp := minio.ToErrorResponse(err)
		if resp.Code == "BucketAlreadyOwnedByYou" || resp.Code == "BucketAlreadyExists" {
			return nil // another instance won the race
		}
		return fmt.Errorf("creating bucket %q: %w", b.opts.Bucket, describe(err))
	}
	return nil
}

// describe turns an S3 error into one that says what to fix. minio-go's
// errors carry codes and messages from the server, never our secret.
func describe(err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		return fmt.Errorf("S3 refused the credentials (%s): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the AWS profile", resp.Code)
	case "AccessDenied":
		return errors.New("S3 denied access to the bucket (AccessDenied): the credentials lack s3:ListBucket on it")
	case "":
		return fmt.Errorf("S3 unreachable: %w", err)
	default:
		return fmt.Errorf("S3 error %s: %s", resp.Code, resp.Message)
	}
}

// Serve answers a GET for a complete upload's object: a 302 to a presigned
// URL with Redirect, else the object itself with Range and conditional
// requests handled by http.ServeContent.
func (b *Bucket) Serve(ctx context.Context, w http.ResponseWriter, r *http.Request, info handler.FileInfo) error {
	key := info.Storage["Key"]
	if key == "" {
		return errors.New("upload has no object key")
	}
	if b.opts.Redirect {
		u, err := b.Presign(ctx, key, w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"))
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusFound)
		return nil
	}
	obj, err := b.mc.GetObject(ctx, b.opts.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return describe(err)
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err != nil {
		return describe(err)
	}
	if st.ETag != "" {
		w.Header().Set("ETag", `"`+strings.Trim(st.ETag, `"`)+`"`)
	}
	http.ServeContent(w, r, "", st.LastModified, obj)
	return nil
}

// Presign returns a GET URL for key valid for the configured TTL, telling
// S3 to answer with the given content type and disposition.
func (b *Bucket) Presign(ctx context.Context, key, contentType, disposition string) (string, error) {
	params := url.Values{}
	if contentType != "" {
		params.Set("response-content-type", contentType)
	}
	if disposition != "" {
		params.Set("response-content-disposition", disposition)
	}
	u, err := b.mc.PresignedGetObject(ctx, b.opts.Bucket, key, b.opts.URLTTL, params)
	if err != nil {
		return "", fmt.Errorf("presigning download: %w", describe(err))
	}
	return u.String(), nil
}
