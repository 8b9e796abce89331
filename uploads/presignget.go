package uploads

import (
	"context"
	"fmt"
	"mime"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// PresignGet makes a short-lived link that downloads a stored object,
// offered as an attachment under filename.
func (s *Objects) PresignGet(ctx context.Context, key, filename string, ttl time.Duration) (string, error) {
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	if filename != "" {
		cd := mime.FormatMediaType("attachment", map[string]string{"filename": filename})
		in.ResponseContentDisposition = &cd
	}
	out, err := s.presign.PresignGetObject(ctx, in, func(o *s3.PresignOptions) { o.Expires = ttl })
	if err != nil {
		return "", fmt.Errorf("%w: presign get %s: %w", ErrUnavailable, key, err)
	}
	return out.URL, nil
}
