package uploads

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// List returns the keys under a prefix, for tests.
func (s *Objects) List(ctx context.Context, prefix string) ([]string, error) {
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
func (s *Objects) Walk(ctx context.Context, prefix string, fn func(Listed) error) error {
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
func (s *Objects) MultipartUploads(ctx context.Context, prefix string) ([]Unfinished, error) {
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
func (s *Objects) AbortMultipart(ctx context.Context, u Unfinished) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &u.Key, UploadId: &u.UploadID})
	if err != nil && !errors.Is(s.classify("abort", u.Key, err), ErrNotFound) {
		return fmt.Errorf("%w: abort multipart upload %s: %w", ErrUnavailable, u.Key, err)
	}
	return nil
}
