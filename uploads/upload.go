package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Object describes a stored file.
type Object struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	SHA256      string `json:"sha256"`
	Filename    string `json:"filename,omitempty"`
}

// PutOptions are the limits one file must keep to while it streams.
type PutOptions struct {
	MaxSize  int64    // bytes; 0 means no limit of its own
	Types    []string // allowed sniffed types; empty allows any
	Filename string   // the client's name, already sanitised; metadata only
}

// ErrTooLarge means the file went over PutOptions.MaxSize; nothing is kept.
var ErrTooLarge = errors.New("uploads: file too large")

// TypeError means the file's content is not of an allowed type.
type TypeError struct{ Sniffed string }

func (e *TypeError) Error() string { return "uploads: content type " + e.Sniffed + " not allowed" }

// SourceError wraps a failure to read the file from the client (a broken
// body, a body over its limit, a client gone): the client's fault, not S3's.
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return "uploads: reading the upload: " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

const (
	metaSHA256   = "sha256"
	metaFilename = "filename"
)

// Put streams src into the object key. A file that fits in one buffer is
// sent with one PutObject; a larger one as a multipart upload with at most
// two part buffers, one filling while the other is sent. The type is
// decided from the first bytes before anything is stored. On any error
// nothing is left behind: no object, no unfinished multipart upload.
func (s *Store) Put(ctx context.Context, key string, src io.Reader, o PutOptions) (Object, error) {
	buf, err := s.buffers.get(ctx)
	if err != nil {
		return Object{}, &SourceError{Err: err}
	}
	defer func() { s.buffers.put(buf) }()

	limited := src
	if o.MaxSize > 0 {
		limited = io.LimitReader(src, o.MaxSize+1)
	}
	n, rerr := io.ReadFull(limited, buf)
	if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
		return Object{}, &SourceError{Err: rerr}
	}
	if o.MaxSize > 0 && int64(n) > o.MaxSize {
		return Object{}, ErrTooLarge
	}
	obj := Object{Key: key, ContentType: Sniff(buf[:n]), Filename: o.Filename}
	if !TypeAllowed(obj.ContentType, o.Types) {
		return Object{}, &TypeError{Sniffed: obj.ContentType}
	}
	h := sha256.New()
	h.Write(buf[:n])
	if rerr != nil { // the whole file is in buf
		obj.Size = int64(n)
		obj.SHA256 = hex.EncodeToString(h.Sum(nil))
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        &s.bucket,
			Key:           &key,
			Body:          bytes.NewReader(buf[:n]),
			ContentLength: aws.Int64(int64(n)),
			ContentType:   &obj.ContentType,
			Metadata:      s.metadata(obj),
		})
		if err != nil {
			return Object{}, s.putError(ctx, key, err)
		}
		return obj, nil
	}
	size, err := s.putMultipart(ctx, &obj, buf, limited, h, o.MaxSize)
	if err != nil {
		return Object{}, err
	}
	obj.Size = size
	return obj, nil
}

func (s *Store) metadata(o Object) map[string]string {
	m := map[string]string{}
	if o.SHA256 != "" {
		m[metaSHA256] = o.SHA256
	}
	if o.Filename != "" {
		m[metaFilename] = url.PathEscape(o.Filename)
	}
	return m
}

// putError turns a failed store into ErrUnavailable, unless the request's
// own context ended (the client went away).
func (s *Store) putError(ctx context.Context, key string, err error) error {
	if ctx.Err() != nil {
		return &SourceError{Err: ctx.Err()}
	}
	return fmt.Errorf("%w: put %s: %w", ErrUnavailable, key, err)
}

// putMultipart sends first (a full buffer) and the rest of src as parts,
// reading the next part while the previous one is sent. The SHA-256 is only
// known at the end and S3 cannot change metadata without copying the data,
// so a multipart object carries its hash as an object tag (and the
// submission record has it too). Every part but the last is a full buffer,
// at least S3's 5 MiB minimum.
func (s *Store) putMultipart(ctx context.Context, obj *Object, first []byte, src io.Reader, h hash.Hash, maxSize int64) (int64, error) {
	meta := s.metadata(*obj)
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &obj.Key, ContentType: &obj.ContentType, Metadata: meta,
	})
	if err != nil {
		return 0, s.putError(ctx, obj.Key, err)
	}
	uploadID := created.UploadId
	abort := func(cause error) (int64, error) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: &s.bucket, Key: &obj.Key, UploadId: uploadID,
		}); err != nil {
			return 0, errors.Join(cause, fmt.Errorf("%w: abort multipart upload of %s: %w", ErrUnavailable, obj.Key, err))
		}
		return 0, cause
	}

	bufs := [][]byte{first}
	if spare := s.buffers.tryGet(); spare != nil {
		bufs = append(bufs, spare)
		defer s.buffers.put(spare)
	}
	var (
		parts    []types.CompletedPart
		inflight = make(chan error, 1)
		pending  bool
	)
	send := func(num int32, data []byte) {
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(num)})
		slot := &parts[len(parts)-1]
		pending = true
		go func() {
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &s.bucket, Key: &obj.Key, UploadId: uploadID,
				PartNumber: aws.Int32(num), Body: bytes.NewReader(data),
				ContentLength: aws.Int64(int64(len(data))),
			})
			if err == nil {
				slot.ETag = out.ETag
			}
			inflight <- err
		}()
	}
	wait := func() error {
		if !pending {
			return nil
		}
		pending = false
		if err := <-inflight; err != nil {
			return s.putError(ctx, obj.Key, err)
		}
		return nil
	}
	fail := func(cause error) (int64, error) {
		_ = wait()
		return abort(cause)
	}

	total := int64(len(first))
	data, idx := first, 0
	for num := int32(1); ; num++ {
		send(num, data)
		into := bufs[0]
		if len(bufs) == 2 {
			idx = 1 - idx
			into = bufs[idx]
		} else if err := wait(); err != nil {
			return abort(err)
		}
		n, rerr := io.ReadFull(src, into)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return fail(&SourceError{Err: rerr})
		}
		h.Write(into[:n])
		total += int64(n)
		if maxSize > 0 && total > maxSize {
			return fail(ErrTooLarge)
		}
		if err := wait(); err != nil {
			return abort(err)
		}
		if n == 0 {
			break
		}
		data = into[:n]
		if rerr != nil { // last, short part
			send(num+1, data)
			if err := wait(); err != nil {
				return abort(err)
			}
			break
		}
	}

	obj.SHA256 = hex.EncodeToString(h.Sum(nil))
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &obj.Key, UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return abort(s.putError(ctx, obj.Key, err))
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := s.client.PutObjectTagging(tctx, &s3.PutObjectTaggingInput{
		Bucket: &s.bucket, Key: &obj.Key,
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(metaSHA256), Value: aws.String(obj.SHA256)}}},
	}); err != nil {
		_ = s.Delete(tctx, obj.Key)
		return 0, s.putError(ctx, obj.Key, err)
	}
	return total, nil
}
