// Package uploads streams files from multipart request bodies into S3 with
// constant memory, checking size, type and integrity as the bytes pass. It
// is the only package that talks to the S3 SDK: the Store also keeps the
// submission records and answers readiness checks.
package uploads

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Config says which S3 bucket the Store uses and how to reach it.
type Config struct {
	Endpoint  string // empty for AWS; else path-style addressing
	Region    string
	Bucket    string
	AccessKey string // empty: the AWS default credential chain
	SecretKey string
	// PartSize is the size of one upload buffer and one multipart part.
	PartSize int64
	// Memory caps the bytes all in-flight uploads may hold in buffers.
	Memory int64
	// BufferWait is how long an upload may wait for a buffer before it
	// is refused with ErrBusy; DefaultBufferWait when 0.
	BufferWait time.Duration
	// ClientBuffers is how many buffers one client (WithClient) may hold
	// at once; no limit but Memory when 0.
	ClientBuffers int
	// MinRate (bytes per second) and RatePeriod: an upload holding a
	// buffer that sends less than MinRate over a whole RatePeriod fails
	// with ErrTooSlow. No minimum when MinRate is 0.
	MinRate    int64
	RatePeriod time.Duration
	// PartsInFlight is how many parts of one multipart upload are sent
	// at once while the next one is read (each holds a part buffer of
	// the budget, taken only when one is free); DefaultPartsInFlight
	// when 0.
	PartsInFlight int
	// StallTimeout bounds every S3 request of an upload: one that makes
	// no progress for this long (takes no body bytes, gives no answer)
	// fails the upload with ErrUnavailable; DefaultStallTimeout when 0.
	StallTimeout time.Duration
}

// Admission defaults.
const (
	DefaultBufferWait = 2 * time.Second
	DefaultRatePeriod = 5 * time.Second
	// DefaultPartsInFlight: two parts sent while a third is read.
	DefaultPartsInFlight = 2
)

// HeadSize is the size of the small buffer every file is first read
// into: files up to this size are stored without taking a part buffer.
// Larger files grow by chunks of this size.
const HeadSize = 256 << 10

// Store puts and removes objects in one bucket.
type Store struct {
	client   *s3.Client
	presign  *s3.PresignClient
	bucket   string
	partSize int64
	buffers  *budget
	minRate  int64
	period   time.Duration
	inflight int           // parts of one upload sent at once
	stall    time.Duration // see Config.StallTimeout
	heads    sync.Pool     // *[]byte of HeadSize: heads and chunks
	chunks   chunkCount    // of heads, held now and at most
	// streaming lets one PutObject stream a body that cannot be read
	// twice: the payload goes unsigned (over https TLS carries its
	// integrity; formq hashes every file itself).
	streaming func(*s3.Options)
}

// Sentinel errors of the Store.
var (
	// ErrUnavailable means S3 could not be reached or failed; retry later.
	ErrUnavailable = errors.New("uploads: storage unavailable")
	// ErrNotFound means the object does not exist.
	ErrNotFound = errors.New("uploads: object not found")
)

// NewStore builds a Store. It does not contact S3; Ping and EnsureBucket do.
func NewStore(ctx context.Context, c Config) (*Store, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(c.Region)}
	if c.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, "")))
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 256
		t.WriteBufferSize = 256 << 10
		t.ReadBufferSize = 64 << 10
		if t.DialContext != nil {
			t.DialContext = largeWrites(t.DialContext)
		}
	})
	opts = append(opts, awsconfig.WithHTTPClient(httpClient))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("uploads: load AWS config: %w", err)
	}
	unsignedAlready := false
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
			o.UsePathStyle = true
		}
		if unsignedAlready = plainHTTP(c.Endpoint); unsignedAlready {
			// Over plain http the SDK would hash every body before sending
			// it, which needs a seekable body and reads it twice; formq
			// computes its own SHA-256 while streaming instead.
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		}
		// Checksums only where S3 requires them: S3-compatible servers
		// differ in what they accept, and formq hashes every file itself.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	if c.PartSize <= 0 {
		c.PartSize = 8 << 20
	}
	if c.Memory < 2*c.PartSize {
		c.Memory = 2 * c.PartSize
	}
	streaming := func(*s3.Options) {}
	if !unsignedAlready {
		streaming = func(o *s3.Options) {
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		}
	}
	return &Store{
		streaming: streaming,
		client:    client,
		presign:   s3.NewPresignClient(client),
		bucket:    c.Bucket,
		partSize:  c.PartSize,
		buffers:   newBudget(int(c.Memory/c.PartSize), c.BufferWait, c.ClientBuffers),
		minRate:   c.MinRate,
		period:    cmp.Or(c.RatePeriod, DefaultRatePeriod),
		inflight:  max(cmp.Or(c.PartsInFlight, DefaultPartsInFlight), 1),
		stall:     cmp.Or(c.StallTimeout, DefaultStallTimeout),
		heads: sync.Pool{New: func() any {
			b := make([]byte, HeadSize)
			return &b
		}},
	}, nil
}

// noRetry makes one call a single attempt.
func noRetry(o *s3.Options) { o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 1) }

func plainHTTP(endpoint string) bool {
	u, err := url.Parse(endpoint)
	return endpoint != "" && err == nil && u.Scheme == "http"
}

// Buffers says how many upload buffers are in use and how many uploads
// wait for one, for the gauges.
func (s *Store) Buffers() (inUse, waiting int64) {
	return s.buffers.inUse.Load(), s.buffers.waiting.Load()
}

// Bucket names the Store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// Ping checks that the bucket is reachable, for readiness probes: one
// attempt, no SDK retries, so the caller's deadline is the whole answer
// time and a refused connection is reported at once.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}, noRetry)
	if err != nil {
		return fmt.Errorf("%w: head bucket %s: %w", ErrUnavailable, s.bucket, err)
	}
	return nil
}

// EnsureBucket creates the bucket when it does not exist yet.
func (s *Store) EnsureBucket(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err == nil {
		return nil
	}
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &s.bucket})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("%w: create bucket %s: %w", ErrUnavailable, s.bucket, err)
	}
	return nil
}

// PutJSON stores a small document, such as a submission record.
func (s *Store) PutJSON(ctx context.Context, key string, body []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	})
	if err != nil {
		return fmt.Errorf("%w: put %s: %w", ErrUnavailable, key, err)
	}
	return nil
}

// Get reads a whole object; for small documents and tests.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, s.classify("get", key, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Head describes a stored object.
func (s *Store) Head(ctx context.Context, key string) (Object, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return Object{}, s.classify("head", key, err)
	}
	obj := Object{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		ContentType: aws.ToString(out.ContentType),
		SHA256:      out.Metadata[metaSHA256],
	}
	if name, err := url.PathUnescape(out.Metadata[metaFilename]); err == nil {
		obj.Filename = name
	}
	if obj.SHA256 == "" {
		// Multipart objects carry their hash as a tag (see putMultipart).
		if tags, err := s.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &s.bucket, Key: &key}); err == nil {
			for _, t := range tags.TagSet {
				if aws.ToString(t.Key) == metaSHA256 {
					obj.SHA256 = aws.ToString(t.Value)
				}
			}
		}
	}
	return obj, nil
}

// Delete removes objects; missing ones are not an error.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	var errs []error
	for _, k := range keys {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(k)})
		if err != nil && !errors.Is(s.classify("delete", k, err), ErrNotFound) {
			errs = append(errs, fmt.Errorf("%w: delete %s: %w", ErrUnavailable, k, err))
		}
	}
	return errors.Join(errs...)
}

// List returns the keys under a prefix, for tests.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := s.Walk(ctx, prefix, func(o Listed) error {
		keys = append(keys, o.Key)
		return nil
	})
	return keys, err
}

// Listed is one object of a listing.
type Listed struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// Walk calls fn for every object under prefix, page by page, so that a
// bucket of any size is listed in constant memory. An error of fn stops
// the walk and is returned as it is.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(Listed) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("%w: list %s: %w", ErrUnavailable, prefix, err)
		}
		for _, o := range page.Contents {
			if err := fn(Listed{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), LastModified: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Unfinished is a multipart upload that was neither completed nor aborted.
type Unfinished struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// MultipartUploads lists the unfinished multipart uploads under a prefix.
func (s *Store) MultipartUploads(ctx context.Context, prefix string) ([]Unfinished, error) {
	var list []Unfinished
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &prefix}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("%w: list multipart uploads: %w", ErrUnavailable, err)
		}
		for _, u := range out.Uploads {
			list = append(list, Unfinished{Key: aws.ToString(u.Key), UploadID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
		}
		if !aws.ToBool(out.IsTruncated) || (out.NextKeyMarker == nil && out.NextUploadIdMarker == nil) {
			return list, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// AbortMultipart ends an unfinished multipart upload and frees its parts.
func (s *Store) AbortMultipart(ctx context.Context, u Unfinished) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &u.Key, UploadId: &u.UploadID})
	if err != nil && !errors.Is(s.classify("abort", u.Key, err), ErrNotFound) {
		return fmt.Errorf("%w: abort multipart upload %s: %w", ErrUnavailable, u.Key, err)
	}
	return nil
}

func (s *Store) classify(op, key string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload":
			return fmt.Errorf("%w: %s %s", ErrNotFound, op, key)
		case "PreconditionFailed":
			return fmt.Errorf("%w: %s %s", ErrChanged, op, key)
		}
	}
	if strings.Contains(err.Error(), "StatusCode: 404") {
		return fmt.Errorf("%w: %s %s", ErrNotFound, op, key)
	}
	if strings.Contains(err.Error(), "StatusCode: 412") {
		return fmt.Errorf("%w: %s %s", ErrChanged, op, key)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, op, key, err)
}
