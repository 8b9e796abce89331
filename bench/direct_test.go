package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/formq/formq/internal/testenv"
)

// directClient is the yardstick: the AWS SDK's fastest, leanest path
// measured on this kind of machine, one streaming PutObject with an
// unsigned payload (FACTS.md), to the same S3 server the API uses. The
// benchmark is the one place besides package uploads that uses the SDK,
// because it measures formq against it.
type directClient struct {
	c      *s3.Client
	bucket string
}

func newDirectClient(b *testing.B, s testenv.S3) *directClient {
	b.Helper()
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = concurrent
		t.WriteBufferSize = 256 << 10
	})
	c := s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:                 hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		APIOptions:                 []func(*middleware.Stack) error{v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware},
	})
	return &directClient{c: c, bucket: s.Bucket}
}

func (d *directClient) put(ctx context.Context, key string, body io.Reader, size int64) error {
	_, err := d.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &d.bucket, Key: &key, Body: body, ContentLength: aws.Int64(size),
	})
	return err
}

// putChecksummed is put with the body's SHA-256, which the server checks
// before it stores the object: what formq sends with a file it stores in
// one PutObject.
func (d *directClient) putChecksummed(ctx context.Context, key string, body []byte) error {
	sum := sha256.Sum256(body)
	_, err := d.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &d.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	})
	return err
}

// putMultipart sends body, of a size the client does not know, as a
// multipart upload of partSize parts, one part at a time: what any client
// streaming a file of unknown length to S3 must do.
func (d *directClient) putMultipart(ctx context.Context, key string, body io.Reader, partSize int) error {
	up, err := d.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &key})
	if err != nil {
		return err
	}
	buf := make([]byte, partSize)
	var parts []types.CompletedPart
	for n := int32(1); ; n++ {
		k, rerr := io.ReadFull(body, buf)
		if k > 0 {
			out, err := d.c.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &d.bucket, Key: &key, UploadId: up.UploadId, PartNumber: aws.Int32(n),
				Body: bytes.NewReader(buf[:k]), ContentLength: aws.Int64(int64(k)),
			})
			if err != nil {
				return err
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	_, err = d.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &d.bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return err
}

func numCPU() int { return runtime.NumCPU() }
