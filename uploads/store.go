// Package uploads streams files from multipart request bodies into S3 with
// constant memory, checking size, type and integrity as the bytes pass. It
// is the only package that talks to the S3 SDK.
//
// The parts, in the order a request meets them:
//   - NewBodyReader cuts a request body that stops sending (per-read
//     deadlines instead of one timeout for the whole body).
//   - MultipartReader reads the body's parts; Sniff and TypeAllowed check
//     a file's real type from its first bytes, SanitizeFilename its name.
//   - Store.Put streams one file to S3: small files in one PUT, large ones
//     as a multipart upload whose part buffers come from a memory budget
//     shared by every upload of the process (Config.Memory), admitted by
//     Config.Admission; a hung S3 fails the upload after StallTimeout.
//   - Snapshot and Store.CopyChecked move a staged upload (one a
//     browser sent straight to S3 with a PresignPost, or a resumable one)
//     into a submission's place, exactly the version that was checked.
//   - Objects, embedded in Store, reads and writes everything else in the
//     bucket: submission records (PutJSON, Get), image variants, presigned
//     download links, listings, and Ping for readiness.
//   - Janitor sweeps what crashes leave behind: uploads of submissions
//     never accepted, staged uploads nobody used, unfinished multipart
//     uploads.
//
// NewStore does not contact S3; Ping and EnsureBucket do.
package uploads

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Config says which S3 bucket the Store uses and how to reach it, and
// how much memory its uploads may hold.
type Config struct {
	Endpoint  string // empty for AWS; else path-style addressing
	Region    string
	Bucket    string
	AccessKey string // empty: the AWS default credential chain
	SecretKey string
	// PublicEndpoint is the address presigned links (downloads, browser
	// uploads) point at, for receivers that cannot reach Endpoint (S3 on
	// a private network behind a public name); Endpoint when empty.
	PublicEndpoint string
	// PartSize is the size of one upload buffer and one multipart part.
	PartSize int64
	// Memory caps the bytes all in-flight uploads may hold in buffers.
	Memory int64
	// PartsInFlight is how many parts of one multipart upload are sent
	// at once while the next one is read (each holds a part buffer of
	// the budget, taken only when one is free); DefaultPartsInFlight
	// when 0.
	PartsInFlight int
	// StallTimeout bounds every S3 request of an upload: one that makes
	// no progress for this long (takes no body bytes, gives no answer)
	// fails the upload with ErrUnavailable; DefaultStallTimeout when 0.
	StallTimeout time.Duration
	Admission
}

// Admission says which uploads get a part buffer of the Config's Memory
// and how long they may keep it, so that slow or greedy clients cannot
// hold every buffer.
type Admission struct {
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

// Store streams uploads into one bucket within a memory budget (Put),
// and copies staged uploads into place (Copy). The bucket's other
// objects, submission records and listings, are read and written through
// its embedded Objects.
type Store struct {
	Objects
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
	// integrity; formq hashes every file itself) and in one attempt.
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
	presigner := client
	if c.PublicEndpoint != "" && c.PublicEndpoint != c.Endpoint {
		presigner = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(c.PublicEndpoint)
			o.UsePathStyle = true
		})
	}
	if c.PartSize <= 0 {
		c.PartSize = 8 << 20
	}
	if c.Memory < 2*c.PartSize {
		c.Memory = 2 * c.PartSize
	}
	streaming := func(o *s3.Options) {
		// A body read once cannot be sent again: the SDK's retry would
		// only sleep its backoff (up to 2 s) before failing to rewind it,
		// and hold the answer to a client whose upload failed that long.
		noRetry(o)
		if !unsignedAlready {
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		}
	}
	return &Store{
		Objects:   Objects{client: client, presign: s3.NewPresignClient(presigner), bucket: c.Bucket},
		streaming: streaming,
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
