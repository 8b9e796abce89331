package uploads

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MaxCopySize is the largest object Copy moves in one S3 CopyObject.
const MaxCopySize = 5 << 30

// ErrChanged means a staged object is no longer the one that was
// checked: it was uploaded again in between.
var ErrChanged = errors.New("uploads: object changed since it was checked")

// Snapshot is a staged object as it was checked: its size, its ETag and
// its first bytes, all from one response, so they describe one version.
type Snapshot struct {
	Size int64
	ETag string
	Head []byte // the first SniffLen bytes, fewer if the object is shorter
}

// Snapshot reads the first SniffLen bytes of an object with one ranged
// GET, with its total size and ETag: enough to check its size and sniff
// its type without downloading it, and to copy exactly that version
// afterwards (CopyChecked).
func (s *Objects) Snapshot(ctx context.Context, key string) (Snapshot, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &s.bucket, Key: &key, Range: aws.String(fmt.Sprintf("bytes=0-%d", SniffLen-1)),
	})
	if err != nil {
		if isRangeError(err) {
			// An empty object has no byte 0.
			h, herr := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
			if herr != nil {
				return Snapshot{}, s.classify("head", key, herr)
			}
			return Snapshot{Size: aws.ToInt64(h.ContentLength), ETag: aws.ToString(h.ETag)}, nil
		}
		return Snapshot{}, s.classify("get", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, SniffLen))
	if err != nil {
		return Snapshot{}, fmt.Errorf("%w: read %s: %w", ErrUnavailable, key, err)
	}
	snap := Snapshot{Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag), Head: b}
	if cr := aws.ToString(out.ContentRange); cr != "" {
		// "bytes 0-3071/300008": the object's size follows the slash.
		_, total, ok := strings.Cut(cr, "/")
		n, err := strconv.ParseInt(total, 10, 64)
		if !ok || err != nil {
			return Snapshot{}, fmt.Errorf("%w: get %s: unreadable Content-Range %q", ErrUnavailable, key, cr)
		}
		snap.Size = n
	}
	if snap.ETag == "" {
		return Snapshot{}, fmt.Errorf("%w: get %s: no ETag", ErrUnavailable, key)
	}
	return snap, nil
}

func isRangeError(err error) bool {
	return strings.Contains(err.Error(), "InvalidRange") || strings.Contains(err.Error(), "StatusCode: 416")
}

// Copy makes a server-side copy of an object at to, describing it as obj
// (its sniffed content type, hash and file name) rather than as the
// uploader claimed. Objects over MaxCopySize are refused with ErrTooLarge.
func (s *Store) Copy(ctx context.Context, from string, obj Object) error {
	return s.copy(ctx, from, "", obj)
}

// CopyChecked copies like Copy, but only the version of from whose ETag
// is etag (a Snapshot's): when the object was uploaded again since, the
// copy fails with ErrChanged and nothing is written.
func (s *Store) CopyChecked(ctx context.Context, from, etag string, obj Object) error {
	if etag == "" {
		return fmt.Errorf("%w: copy %s without an ETag to check", ErrUnavailable, from)
	}
	return s.copy(ctx, from, etag, obj)
}

func (s *Store) copy(ctx context.Context, from, etag string, obj Object) error {
	if obj.Size > MaxCopySize {
		return fmt.Errorf("%w: %d bytes is over the %d bytes one copy moves", ErrTooLarge, obj.Size, int64(MaxCopySize))
	}
	in := &s3.CopyObjectInput{
		Bucket:            &s.bucket,
		Key:               &obj.Key,
		CopySource:        aws.String(s.bucket + "/" + from),
		ContentType:       &obj.ContentType,
		Metadata:          metadata(obj),
		MetadataDirective: types.MetadataDirectiveReplace,
	}
	if etag != "" {
		in.CopySourceIfMatch = &etag
	}
	out, err := s.client.CopyObject(ctx, in)
	if err != nil {
		return s.classify("copy", from, err)
	}
	// A multipart object's ETag ("{md5 of part md5s}-{parts}") is not its
	// copy's, which is one part: only the condition guards those.
	if etag != "" && !strings.Contains(etag, "-") && out.CopyObjectResult != nil && out.CopyObjectResult.ETag != nil && unquote(*out.CopyObjectResult.ETag) != unquote(etag) {
		// A store that ignored the condition: what was copied is not
		// what was checked.
		s.cleanup(ctx, obj.Key)
		return fmt.Errorf("%w: copy %s: ETag %s, checked %s", ErrChanged, from, *out.CopyObjectResult.ETag, etag)
	}
	return nil
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }

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
func (s *Objects) PresignPost(ctx context.Context, key, contentType string, maxSize int64, ttl time.Duration) (PresignedPost, error) {
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
