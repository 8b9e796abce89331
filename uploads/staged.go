package uploads

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MaxCopySize is the largest object Copy moves in one S3 CopyObject.
const MaxCopySize = 5 << 30

// ReadHead returns the first SniffLen bytes of an object (fewer if it is
// shorter), with one ranged GET: enough to sniff its type without
// downloading it.
func (s *Store) ReadHead(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &s.bucket, Key: &key, Range: aws.String(fmt.Sprintf("bytes=0-%d", SniffLen-1)),
	})
	if err != nil {
		if isRangeError(err) {
			return nil, nil // an empty object has no byte 0
		}
		return nil, s.classify("get", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, SniffLen))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrUnavailable, key, err)
	}
	return b, nil
}

func isRangeError(err error) bool {
	return strings.Contains(err.Error(), "InvalidRange") || strings.Contains(err.Error(), "StatusCode: 416")
}

// Copy makes a server-side copy of an object at to, describing it as obj
// (its sniffed content type, hash and file name) rather than as the
// uploader claimed. Objects over MaxCopySize are refused with ErrTooLarge.
func (s *Store) Copy(ctx context.Context, from string, obj Object) error {
	if obj.Size > MaxCopySize {
		return fmt.Errorf("%w: %d bytes is over the %d bytes one copy moves", ErrTooLarge, obj.Size, int64(MaxCopySize))
	}
	_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:            &s.bucket,
		Key:               &obj.Key,
		CopySource:        aws.String(s.bucket + "/" + from),
		ContentType:       &obj.ContentType,
		Metadata:          s.metadata(obj),
		MetadataDirective: types.MetadataDirectiveReplace,
	})
	if err != nil {
		return s.classify("copy", from, err)
	}
	return nil
}

// PresignedPost is what a browser needs to upload one file straight to S3
// with an HTML form POST: the URL and the form fields to send before the
// file (the file field itself must be named "file" and come last).
type PresignedPost struct {
	URL    string            `json:"url"`
	Fields map[string]string `json:"fields"`
}

// PresignPost signs an S3 POST policy for one object at key: its size
// between 1 byte and maxSize, its Content-Type exactly contentType,
// valid for ttl.
func (s *Store) PresignPost(ctx context.Context, key, contentType string, maxSize int64, ttl time.Duration) (PresignedPost, error) {
	out, err := s.presign.PresignPostObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key}, func(o *s3.PresignPostOptions) {
		o.Expires = ttl
		o.Conditions = []any{
			[]any{"content-length-range", 1, maxSize},
			map[string]string{"Content-Type": contentType},
		}
	})
	if err != nil {
		return PresignedPost{}, fmt.Errorf("%w: presign post %s: %w", ErrUnavailable, key, err)
	}
	out.Values["Content-Type"] = contentType
	return PresignedPost{URL: out.URL, Fields: out.Values}, nil
}
