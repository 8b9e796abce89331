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
	"github.com/formq/formq/submission"
)

// Object describes a stored file.
type Object = submission.Object

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
	// maxParts is S3's limit on the parts of one multipart upload.
	maxParts = 10000
)

// Put streams src into the object key. The first bytes go to a small
// pooled buffer: the type is decided from them before anything is stored,
// and a file that ends there is sent with one PutObject without touching
// the upload budget. A larger file takes a part buffer from the budget
// (waiting for one if all are in use); if it fits, one PutObject, else a
// multipart upload with at most two part buffers, one filling while the
// other is sent. On any error nothing is left behind: no object, no
// unfinished multipart upload.
//
// A *Part that declares its size (its own Content-Length) is refused at
// once when over MaxSize, and otherwise streamed with a single PutObject
// of exactly that size, without part buffers: the fastest and leanest
// path. A part whose content does not match its declared size fails with
// ErrSizeMismatch and leaves nothing.
func (s *Store) Put(ctx context.Context, key string, src io.Reader, o PutOptions) (Object, error) {
	declared := int64(-1)
	if p, ok := src.(*Part); ok {
		declared = p.Size
	}
	if o.MaxSize > 0 {
		if declared > o.MaxSize {
			return Object{}, ErrTooLarge
		}
		src = io.LimitReader(src, o.MaxSize+1)
	}
	headp := s.heads.Get().(*[]byte)
	defer s.heads.Put(headp)
	head := *headp
	n, eof, err := fill(src, head)
	if err != nil {
		return Object{}, &SourceError{Err: err}
	}
	if o.MaxSize > 0 && int64(n) > o.MaxSize {
		return Object{}, ErrTooLarge
	}
	obj := Object{Key: key, ContentType: Sniff(head[:n]), Filename: o.Filename}
	if !TypeAllowed(obj.ContentType, o.Types) {
		return Object{}, &TypeError{Sniffed: obj.ContentType}
	}
	h := sha256.New()
	if declared >= 0 && (int64(n) > declared || eof && int64(n) != declared) {
		return Object{}, &SourceError{Err: ErrSizeMismatch}
	}
	if eof {
		return s.putOne(ctx, obj, head[:n], h)
	}
	if declared > 0 && declared <= MaxCopySize {
		return s.putStream(ctx, obj, head[:n], src, declared, h)
	}

	l, err := s.buffers.get(ctx)
	if errors.Is(err, ErrBusy) {
		return Object{}, err
	}
	if err != nil {
		return Object{}, &SourceError{Err: err}
	}
	defer s.buffers.put(l)
	buf := l.buf
	if s.minRate > 0 {
		// Holding a buffer, the body must keep a minimum pace, or it
		// gives the buffer back.
		src = &rateReader{r: src, min: s.minRate, period: s.period, start: time.Now()}
	}
	copy(buf, head[:n])
	m, eof, err := fill(src, buf[n:])
	if err != nil {
		return Object{}, &SourceError{Err: err}
	}
	n += m
	if o.MaxSize > 0 && int64(n) > o.MaxSize {
		return Object{}, ErrTooLarge
	}
	if eof {
		return s.putOne(ctx, obj, buf[:n], h)
	}
	// The buffer is full: one more byte tells a file of exactly one
	// buffer (one PutObject) from a larger one (a multipart upload).
	var one [1]byte
	k, eof, err := fill(src, one[:])
	if err != nil {
		return Object{}, &SourceError{Err: err}
	}
	if eof {
		return s.putOne(ctx, obj, buf[:n], h)
	}
	h.Write(buf)
	size, err := s.putMultipart(ctx, &obj, buf, io.MultiReader(bytes.NewReader(one[:k]), src), h, o.MaxSize)
	if err != nil {
		return Object{}, err
	}
	obj.Size = size
	return obj, nil
}

// ErrSizeMismatch means a file's content was not as long as its declared
// size.
var ErrSizeMismatch = errors.New("uploads: file size differs from its declared Content-Length")

// putStream sends a file of a known size with one streaming PutObject:
// head, then the rest of src. The file must end exactly at size.
func (s *Store) putStream(ctx context.Context, obj Object, head []byte, src io.Reader, size int64, h hash.Hash) (Object, error) {
	body := &sourceReader{r: io.MultiReader(bytes.NewReader(head), src), h: h}
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &obj.Key,
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   &obj.ContentType,
		Metadata:      s.metadata(obj),
	}, s.streaming)
	switch {
	case body.err != nil:
		s.cleanup(ctx, obj.Key)
		return Object{}, &SourceError{Err: body.err}
	case body.n != size:
		s.cleanup(ctx, obj.Key)
		return Object{}, &SourceError{Err: ErrSizeMismatch}
	case err != nil:
		s.cleanup(ctx, obj.Key)
		return Object{}, s.putError(ctx, obj.Key, err)
	}
	// The PUT took exactly size bytes; the file must end there.
	var one [1]byte
	if k, eof, err := fill(src, one[:]); k > 0 || !eof || err != nil {
		s.cleanup(ctx, obj.Key)
		if err != nil {
			return Object{}, &SourceError{Err: err}
		}
		return Object{}, &SourceError{Err: ErrSizeMismatch}
	}
	obj.Size = size
	obj.SHA256 = hex.EncodeToString(h.Sum(nil))
	if err := s.tagSHA256(ctx, obj); err != nil {
		return Object{}, err
	}
	return obj, nil
}

// sourceReader hashes what it passes and keeps the source's own error, so
// that a failed PUT can be told from a failed client.
type sourceReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (r *sourceReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// cleanup removes an object a failed upload may have left.
func (s *Store) cleanup(ctx context.Context, key string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = s.Delete(dctx, key)
}

// fill reads into buf until it is full or src ends. eof reports that src
// ended (io.EOF); any other error, io.ErrUnexpectedEOF of a truncated body
// included, is returned as err: a short read is never taken for the end
// of the file.
func fill(src io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}

// putOne stores a whole file held in data with one PutObject.
func (s *Store) putOne(ctx context.Context, obj Object, data []byte, h hash.Hash) (Object, error) {
	h.Write(data)
	obj.Size = int64(len(data))
	obj.SHA256 = hex.EncodeToString(h.Sum(nil))
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &obj.Key,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(obj.Size),
		ContentType:   &obj.ContentType,
		Metadata:      s.metadata(obj),
	})
	if err != nil {
		return Object{}, s.putError(ctx, obj.Key, err)
	}
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

// partResult is the outcome of one UploadPart.
type partResult struct {
	num  int32
	etag *string
	err  error
}

// putMultipart sends first (a full buffer, already hashed) and the rest of
// src as parts, reading the next part while the previous one is sent. The
// SHA-256 is only known at the end and S3 cannot change metadata without
// copying the data, so a multipart object carries its hash as an object
// tag (and the submission record has it too). Every part but the last is
// a full buffer, at least S3's 5 MiB minimum.
func (s *Store) putMultipart(ctx context.Context, obj *Object, first []byte, src io.Reader, h hash.Hash, maxSize int64) (int64, error) {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &obj.Key, ContentType: &obj.ContentType, Metadata: s.metadata(*obj),
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
	if spare := s.buffers.tryGet(ctx); spare != nil {
		bufs = append(bufs, spare.buf)
		defer s.buffers.put(spare)
	}
	var (
		parts    []types.CompletedPart
		inflight = make(chan partResult, 1)
		pending  bool
	)
	send := func(num int32, data []byte) {
		pending = true
		go func() {
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &s.bucket, Key: &obj.Key, UploadId: uploadID,
				PartNumber: aws.Int32(num), Body: bytes.NewReader(data),
				ContentLength: aws.Int64(int64(len(data))),
			})
			r := partResult{num: num, err: err}
			if err == nil {
				r.etag = out.ETag
			}
			inflight <- r
		}()
	}
	wait := func() error {
		if !pending {
			return nil
		}
		pending = false
		r := <-inflight
		if r.err != nil {
			return s.putError(ctx, obj.Key, r.err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(r.num), ETag: r.etag})
		return nil
	}
	fail := func(cause error) (int64, error) {
		_ = wait()
		return abort(cause)
	}

	total := int64(len(first))
	cur, idx := first, 0
	for num := int32(1); ; {
		send(num, cur)
		into := bufs[0]
		if len(bufs) == 2 {
			idx = 1 - idx
			into = bufs[idx]
		} else if err := wait(); err != nil {
			return abort(err)
		}
		n, eof, rerr := fill(src, into)
		if rerr != nil {
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
		if num++; num > maxParts {
			return abort(fmt.Errorf("%w: over %d parts of %d bytes", ErrTooLarge, maxParts, len(first)))
		}
		cur = into[:n]
		if eof {
			send(num, cur)
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
	if err := s.tagSHA256(ctx, *obj); err != nil {
		return 0, err
	}
	return total, nil
}

// tagSHA256 records the hash of an object whose hash was only known after
// its data was sent; on failure the object is removed.
func (s *Store) tagSHA256(ctx context.Context, obj Object) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := s.client.PutObjectTagging(tctx, &s3.PutObjectTaggingInput{
		Bucket: &s.bucket, Key: &obj.Key,
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(metaSHA256), Value: aws.String(obj.SHA256)}}},
	}); err != nil {
		_ = s.Delete(tctx, obj.Key)
		return s.putError(ctx, obj.Key, err)
	}
	return nil
}
