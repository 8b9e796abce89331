package uploads

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Objects reads and writes the objects of one bucket that are not
// streamed uploads: submission records, image variants, listings for the
// janitor, presigned links. A Store embeds it; its zero value is not
// usable.
type Objects struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
}

// Bucket names the bucket.
func (s *Objects) Bucket() string { return s.bucket }

// Ping checks that the bucket is reachable, for readiness probes: one
// attempt, no SDK retries, so the caller's deadline is the whole answer
// time and a refused connection is reported at once.
func (s *Objects) Ping(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}, noRetry)
	if err != nil {
		return fmt.Errorf("%w: head bucket %s: %w", ErrUnavailable, s.bucket, err)
	}
	return nil
}

// ServerTime is the S3 server's clock, read from the Date header of a
// HEAD of the bucket. The header counts whole seconds and is written
// before the answer arrives, so it errs early, by up to a second and the
// request's time: an age measured against it is never longer than it is.
func (s *Objects) ServerTime(ctx context.Context) (time.Time, error) {
	out, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: head bucket %s: %w", ErrUnavailable, s.bucket, err)
	}
	raw, _ := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response)
	if raw == nil {
		return time.Time{}, fmt.Errorf("head bucket %s: no HTTP answer to read the S3 server's clock from", s.bucket)
	}
	date, err := http.ParseTime(raw.Header.Get("Date"))
	if err != nil {
		return time.Time{}, fmt.Errorf("head bucket %s: the S3 server sent no Date: %w", s.bucket, err)
	}
	return date, nil
}

// EnsureBucket creates the bucket when it does not exist yet.
func (s *Objects) EnsureBucket(ctx context.Context) error {
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
func (s *Objects) PutJSON(ctx context.Context, key string, body []byte) error {
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
func (s *Objects) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, s.classify("get", key, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Head describes a stored object.
func (s *Objects) Head(ctx context.Context, key string) (Object, error) {
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
func (s *Objects) Delete(ctx context.Context, keys ...string) error {
	var errs []error
	for _, k := range keys {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(k)})
		if err != nil && !errors.Is(s.classify("delete", k, err), ErrNotFound) {
			errs = append(errs, fmt.Errorf("%w: delete %s: %w", ErrUnavailable, k, err))
		}
	}
	return errors.Join(errs...)
}

// Open streams a stored object; the caller closes it. The size is the
// object's length in bytes.
func (s *Objects) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, 0, s.classify("get", key, err)
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

// PutBytes stores a small object held in memory, such as an image
// variant, replacing any object under the key.
func (s *Objects) PutBytes(ctx context.Context, key string, body []byte, contentType string) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("%w: put %s: %w", ErrUnavailable, key, err)
	}
	return nil
}

func (s *Objects) classify(op, key string, err error) error {
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
