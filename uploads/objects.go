package uploads

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Open streams a stored object; the caller closes it. The size is the
// object's length in bytes.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, 0, s.classify("get", key, err)
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

// PutBytes stores a small object held in memory, such as an image
// variant, replacing any object under the key.
func (s *Store) PutBytes(ctx context.Context, key string, body []byte, contentType string) error {
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
