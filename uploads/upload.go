package uploads

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"slices"
	"sync/atomic"
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
// pooled chunk: the type is decided from them before anything is stored,
// and a file that ends there is sent with one PutObject without touching
// the upload budget. A larger file takes a lease from the budget
// (waiting for one if all are in use) and grows chunk by chunk up to one
// part; if it fits, one PutObject, else a multipart upload with up to
// PartsInFlight parts sent while the next one fills. On any error nothing
// is left behind: no object, no unfinished multipart upload.
//
// A *Part that declares its size (its own Content-Length) is refused at
// once when over MaxSize, and otherwise streamed with a single PutObject
// of exactly that size, without part buffers: the fastest and leanest
// path. A part whose content does not match its declared size fails with
// ErrSizeMismatch and leaves nothing.
//
// A *Part that does not declare its size but whose largest possible size
// is known from the request's length (Part.Predicted, see
// MultipartReader.SetLength) and is over one part is streamed the same
// way with that size, since browsers put the file last: when the part
// ends sooner (more parts follow it), the rest of the PUT is padded and
// the object is cut to the file's size with one server-side copy.
func (s *Store) Put(ctx context.Context, key string, src io.Reader, o PutOptions) (Object, error) {
	declared := int64(-1)
	part, _ := src.(*Part)
	if part != nil {
		declared = part.Size
	}
	if o.MaxSize > 0 {
		if declared > o.MaxSize {
			return Object{}, ErrTooLarge
		}
		src = io.LimitReader(src, o.MaxSize+1)
	}
	buf := newChunks(&s.heads, &s.chunks)
	defer buf.release()
	n, eof, err := buf.fill(src, HeadSize)
	if err != nil {
		return Object{}, &SourceError{Err: err}
	}
	if o.MaxSize > 0 && int64(n) > o.MaxSize {
		return Object{}, ErrTooLarge
	}
	obj := Object{Key: key, ContentType: Sniff(buf.head()), Filename: o.Filename}
	if !TypeAllowed(obj.ContentType, o.Types) {
		return Object{}, &TypeError{Sniffed: obj.ContentType}
	}
	h := sha256.New()
	if declared >= 0 && (int64(n) > declared || eof && int64(n) != declared) {
		return Object{}, &SourceError{Err: ErrSizeMismatch}
	}
	if eof {
		return s.putOne(ctx, obj, buf, h)
	}
	predicted := int64(-1)
	if part != nil {
		predicted = part.Predicted // known now that the head is read
	}
	stream := declared > 0 && declared <= MaxCopySize
	guess := declared < 0 && predicted > s.partSize && predicted <= MaxCopySize && (o.MaxSize <= 0 || predicted <= o.MaxSize)
	if (stream || guess) && s.minRate > 0 {
		// A streamed file holds an S3 request open: it keeps the same
		// minimum pace as one holding a buffer.
		src = newRateReader(src, s.minRate, s.period, nil)
	}
	if stream {
		return s.putStream(ctx, obj, buf.head(), src, declared, h, false)
	}
	if guess {
		return s.putStream(ctx, obj, buf.head(), src, predicted, h, true)
	}

	l, err := s.buffers.get(ctx)
	if errors.Is(err, ErrBusy) {
		return Object{}, err
	}
	if err != nil {
		return Object{}, &SourceError{Err: err}
	}
	defer s.buffers.put(l)
	if s.minRate > 0 {
		// Holding a buffer, the body must keep a minimum pace, or it
		// gives the buffer back.
		src = newRateReader(src, s.minRate, s.period, s.buffers)
	}
	m, eof, err := buf.fill(src, int(s.partSize))
	if err != nil {
		return Object{}, &SourceError{Err: err}
	}
	n += m
	if o.MaxSize > 0 && int64(n) > o.MaxSize {
		return Object{}, ErrTooLarge
	}
	if eof {
		return s.putOne(ctx, obj, buf, h)
	}
	// The buffer is full: one more byte tells a file of exactly one
	// buffer (one PutObject) from a larger one (a multipart upload).
	var one [1]byte
	k, eof, err := fill(src, one[:])
	if err != nil {
		return Object{}, &SourceError{Err: err}
	}
	if eof {
		return s.putOne(ctx, obj, buf, h)
	}
	buf.hash(h)
	size, err := s.putMultipart(ctx, &obj, buf, io.MultiReader(bytes.NewReader(one[:k]), src), h, o.MaxSize)
	if err != nil {
		return Object{}, err
	}
	obj.Size = size
	return obj, nil
}

// ErrSizeMismatch means a file's content was not as long as its declared
// size, or longer than the request's length leaves room for.
var ErrSizeMismatch = fmt.Errorf("%w: file size differs from its declared Content-Length", ErrMalformed)

// putStream sends a file of a known size with one streaming PutObject:
// head, then the rest of src. The file must end exactly at size, unless
// size is only the most it can be (pad): then a file that ends sooner is
// padded to size and cut back to its own length afterwards.
//
// The PUT goes to the file's partial key (submission.PartialKey), never
// to its own: an S3 server may store a PUT whose connection closed early
// (a crash, the shutdown drain) as far as it got, and such an object must
// not look like a stored file. Once the whole body was read, one
// server-side copy makes the final object (cut to the file's length, or
// with the bytes that followed the prediction) and the partial one goes;
// a partial object left by a cut is removed by the Janitor.
func (s *Store) putStream(ctx context.Context, obj Object, head []byte, src io.Reader, size int64, h hash.Hash, pad bool) (Object, error) {
	partial := submission.PartialKey(obj.Key)
	// A request cut by its context, some S3 servers still store as far
	// as it got, after the delete below.
	wctx, w, stop := s.watch(context.WithoutCancel(ctx))
	defer stop()
	body := &sourceReader{r: io.MultiReader(bytes.NewReader(head), src), h: h, size: size, pad: pad, tick: w.progress}
	// When the request ends (the drain cuts it) while S3 is still taking
	// the body, the PUT is cut at once: the body's own read would fail
	// only once S3 took more of it. A PUT given its whole body finishes.
	defer context.AfterFunc(ctx, func() {
		if !body.given.Load() {
			w.cancel(context.Cause(ctx))
		}
	})()
	_, err := s.client.PutObject(wctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &partial,
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   &obj.ContentType,
	}, s.streaming)
	if err != nil || body.err != nil {
		defer s.cleanupCut(ctx, partial)
	} else {
		defer s.cleanup(ctx, partial)
	}
	switch {
	case body.err != nil:
		return Object{}, &SourceError{Err: body.err}
	case err != nil && wctx.Err() != nil:
		// Cut short by the stall deadline or by the request's end (the
		// drain): S3's fault or the server's, not a short body.
		return Object{}, s.putError(ctx, obj.Key, w.cause(err))
	case body.n != size && !body.short:
		return Object{}, &SourceError{Err: ErrSizeMismatch}
	case err != nil:
		return Object{}, s.putError(ctx, obj.Key, w.cause(err))
	}
	obj.SHA256 = hex.EncodeToString(h.Sum(nil))
	if body.short {
		// More parts followed the file: keep only its own bytes.
		obj.Size = body.n
		if err := s.rewrite(ctx, obj, partial, obj.Size, nil); err != nil {
			return Object{}, err
		}
		return obj, nil
	}
	// The PUT took exactly size bytes; the file must end there, or, for a
	// predicted size, soon after (a body without the final line break).
	more := newChunks(&s.heads, &s.chunks)
	defer more.release()
	limit := 1
	if pad {
		limit = HeadSize
	}
	k, eof, err := more.fill(src, limit)
	switch {
	case err != nil:
		return Object{}, &SourceError{Err: err}
	case !eof || k > 0 && !pad:
		return Object{}, &SourceError{Err: ErrSizeMismatch}
	case k > 0:
		// The file went on past the prediction: append what followed.
		more.hash(h)
		obj.SHA256 = hex.EncodeToString(h.Sum(nil))
		obj.Size = size + int64(k)
		if err := s.rewrite(ctx, obj, partial, size, more); err != nil {
			return Object{}, err
		}
		return obj, nil
	}
	obj.Size = size
	if err := s.rewrite(ctx, obj, partial, size, nil); err != nil {
		return Object{}, err
	}
	return obj, nil
}

// rewrite makes the object obj.Key of the first keep bytes of the object
// from, then more (nil: nothing), in one multipart upload of a copied
// part, with obj's metadata (its SHA-256 included). Nothing is at
// obj.Key before it completes.
func (s *Store) rewrite(ctx context.Context, obj Object, from string, keep int64, more *chunks) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.completeTimeout(obj.Size))
	defer cancel()
	created, err := s.client.CreateMultipartUpload(tctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &obj.Key, ContentType: &obj.ContentType, Metadata: metadata(obj),
	})
	if err != nil {
		return s.putError(ctx, obj.Key, err)
	}
	var parts []types.CompletedPart
	copied, err := s.client.UploadPartCopy(tctx, &s3.UploadPartCopyInput{
		Bucket: &s.bucket, Key: &obj.Key, UploadId: created.UploadId, PartNumber: aws.Int32(1),
		CopySource:      aws.String(s.bucket + "/" + from),
		CopySourceRange: aws.String(fmt.Sprintf("bytes=0-%d", keep-1)),
	})
	if err == nil {
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(1), ETag: copied.CopyPartResult.ETag})
	}
	if err == nil && more != nil {
		var out *s3.UploadPartOutput
		out, err = s.client.UploadPart(tctx, &s3.UploadPartInput{
			Bucket: &s.bucket, Key: &obj.Key, UploadId: created.UploadId, PartNumber: aws.Int32(2),
			Body: more.reader(), ContentLength: aws.Int64(int64(more.n)),
		})
		if err == nil {
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(2), ETag: out.ETag})
		}
	}
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(tctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.bucket, Key: &obj.Key, UploadId: created.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
	}
	if err != nil {
		_ = s.abort(ctx, obj.Key, created.UploadId)
		return s.putError(ctx, obj.Key, err)
	}
	return nil
}

// sourceReader hashes what it passes and keeps the source's own error, so
// that a failed PUT can be told from a failed client. It gives at most
// size bytes; with pad, a source that ends sooner is followed by zeros up
// to size (short, and n is the source's own length).
type sourceReader struct {
	r     io.Reader
	h     hash.Hash
	size  int64
	pad   bool
	tick  func()
	n     int64 // bytes of the source
	sent  int64 // bytes given, padding included
	short bool
	err   error
	given atomic.Bool // all size bytes were given
}

// Read fills p whole unless the source ends or fails: the multipart
// reader gives at most its 4 KiB buffer per read, and the HTTP transport
// writes each read to the connection with a system call of its own.
func (r *sourceReader) Read(p []byte) (int, error) {
	n := 0
	defer func() { r.given.Store(r.sent >= r.size) }()
	for n < len(p) {
		k, err := r.read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (r *sourceReader) read(p []byte) (int, error) {
	r.tick()
	if r.sent >= r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-r.sent)]
	if r.short {
		clear(p)
		r.sent += int64(len(p))
		return len(p), nil
	}
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	r.sent += int64(n)
	if err == io.EOF && r.pad && r.sent < r.size {
		r.short = true
		return n, nil
	}
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// cleanup removes an object a failed upload may have left.
func (s *Store) cleanup(ctx context.Context, key string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.stall)
	defer cancel()
	_ = s.Delete(dctx, key)
}

// cutSettle is how long after a cut PUT its partial object is deleted a
// second time.
const cutSettle = 2 * time.Second

// cleanupCut deletes the partial object of a cut PUT now, and once more
// cutSettle later: an S3 server that stores a PUT whose connection closed
// early (versitygw does) may finish storing it after the first delete,
// which comes within a millisecond of the cut. What a crash leaves
// before the second delete, the Janitor removes.
func (s *Store) cleanupCut(ctx context.Context, key string) {
	s.cleanup(ctx, key)
	ctx = context.WithoutCancel(ctx)
	time.AfterFunc(cutSettle, func() { s.cleanup(ctx, key) })
}

// abort ends an unfinished multipart upload; one that S3 does not answer
// for within the stall timeout is left to the janitor.
func (s *Store) abort(ctx context.Context, key string, uploadID *string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.stall)
	defer cancel()
	if _, err := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: uploadID,
	}); err != nil {
		return fmt.Errorf("%w: abort multipart upload of %s: %w", ErrUnavailable, key, err)
	}
	return nil
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
func (s *Store) putOne(ctx context.Context, obj Object, data *chunks, h hash.Hash) (Object, error) {
	data.hash(h)
	digest := h.Sum(nil)
	obj.Size = int64(data.n)
	obj.SHA256 = hex.EncodeToString(digest)
	// The whole file is here: the PUT finishes even if the client goes
	// (a cut one may be stored in part by some servers; the caller
	// removes the whole one). Its SHA-256 goes with it, so the server
	// checks what it received and refuses a short or altered body
	// instead of storing it.
	wctx, w, stop := s.watch(context.WithoutCancel(ctx))
	defer stop()
	body := data.reader()
	body.tick = w.progress
	_, err := s.client.PutObject(wctx, &s3.PutObjectInput{
		Bucket:         &s.bucket,
		Key:            &obj.Key,
		Body:           body,
		ContentLength:  aws.Int64(obj.Size),
		ContentType:    &obj.ContentType,
		Metadata:       metadata(obj),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(digest)),
	})
	if err != nil {
		return Object{}, s.putError(ctx, obj.Key, w.cause(err))
	}
	return obj, nil
}

func metadata(o Object) map[string]string {
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
// own context ended (the client went away, or the drain cut it: its
// cause, ErrDraining).
func (s *Store) putError(ctx context.Context, key string, err error) error {
	if ctx.Err() != nil {
		return &SourceError{Err: context.Cause(ctx)}
	}
	return fmt.Errorf("%w: put %s: %w", ErrUnavailable, key, err)
}

// partResult is the outcome of one UploadPart.
type partResult struct {
	num  int32
	etag *string
	err  error
}

// sending is one part on its way, in the buffer it was read into.
type sending struct {
	buf  *chunks
	done chan partResult
}

// putMultipart sends first (a full part, already hashed) and the rest of
// src as parts: up to PartsInFlight parts are sent while the next one is
// read, each in a buffer of its own lease (taken only when free at once;
// with just the first, reading and sending alternate). The SHA-256 is
// only known at the end and S3 cannot change metadata without copying the
// data, so a multipart object carries its hash as an object tag (and the
// submission record has it too). Every part but the last is a full part,
// at least S3's 5 MiB minimum.
func (s *Store) putMultipart(ctx context.Context, obj *Object, first *chunks, src io.Reader, h hash.Hash, maxSize int64) (int64, error) {
	cctx, cancel := context.WithTimeout(ctx, s.stall)
	created, err := s.client.CreateMultipartUpload(cctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &obj.Key, ContentType: &obj.ContentType, Metadata: metadata(*obj),
	})
	cancel()
	if err != nil {
		return 0, s.putError(ctx, obj.Key, err)
	}
	uploadID := created.UploadId

	var (
		parts   []types.CompletedPart
		queue   []sending // in part order
		spare   []*chunks // buffers ready to fill
		leases  []*lease  // beyond the first, given back at the end
		failure error
	)
	defer func() {
		for _, b := range spare {
			if b != first {
				b.release()
			}
		}
		for _, l := range leases {
			s.buffers.put(l)
		}
	}()
	send := func(num int32, data *chunks) {
		done := make(chan partResult, 1)
		queue = append(queue, sending{buf: data, done: done})
		go func() {
			// A part in flight finishes even when the client goes away
			// (its stall deadline still bounds it): an abort that
			// overtakes a part S3 is still writing may leave that part.
			wctx, w, stop := s.watch(context.WithoutCancel(ctx))
			defer stop()
			body := data.reader()
			body.tick = w.progress
			out, err := s.client.UploadPart(wctx, &s3.UploadPartInput{
				Bucket: &s.bucket, Key: &obj.Key, UploadId: uploadID,
				PartNumber: aws.Int32(num), Body: body,
				ContentLength: aws.Int64(int64(data.n)),
			})
			r := partResult{num: num, err: w.cause(err)}
			if err == nil {
				r.etag = out.ETag
			}
			done <- r
		}()
	}
	// wait takes the oldest part's outcome and makes its buffer spare.
	wait := func() {
		q := queue[0]
		queue = queue[1:]
		r := <-q.done
		q.buf.reset()
		spare = append(spare, q.buf)
		if r.err != nil {
			failure = cmp.Or(failure, s.putError(ctx, obj.Key, r.err))
			return
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(r.num), ETag: r.etag})
	}
	fail := func(cause error) (int64, error) {
		for len(queue) > 0 {
			wait()
		}
		if err := s.abort(ctx, obj.Key, uploadID); err != nil {
			return 0, errors.Join(cause, err)
		}
		return 0, cause
	}
	// next is an empty buffer to read the next part into.
	next := func() *chunks {
		for len(queue) > s.inflight {
			wait()
		}
		if len(spare) == 0 {
			if l := s.buffers.tryGet(ctx); l != nil {
				leases = append(leases, l)
				return newChunks(&s.heads, &s.chunks)
			}
		}
		for len(spare) == 0 {
			wait()
		}
		b := spare[len(spare)-1]
		spare = spare[:len(spare)-1]
		return b
	}

	total := int64(first.n)
	send(1, first)
	for num := int32(2); ; num++ {
		into := next()
		if failure != nil {
			spare = append(spare, into)
			return fail(failure)
		}
		n, eof, rerr := into.fill(src, int(s.partSize))
		if rerr != nil {
			spare = append(spare, into)
			return fail(&SourceError{Err: rerr})
		}
		total += int64(n)
		if maxSize > 0 && total > maxSize {
			spare = append(spare, into)
			return fail(ErrTooLarge)
		}
		if n == 0 {
			spare = append(spare, into)
			break
		}
		if num > maxParts {
			spare = append(spare, into)
			return fail(fmt.Errorf("%w: over %d parts of %d bytes", ErrTooLarge, maxParts, s.partSize))
		}
		into.hash(h)
		send(num, into)
		if eof {
			break
		}
	}
	for len(queue) > 0 {
		wait()
	}
	if failure != nil {
		return fail(failure)
	}
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return cmp.Compare(*a.PartNumber, *b.PartNumber) })

	obj.SHA256 = hex.EncodeToString(h.Sum(nil))
	cctx, cancel = context.WithTimeout(ctx, s.completeTimeout(total))
	_, err = s.client.CompleteMultipartUpload(cctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &obj.Key, UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	cancel()
	if err != nil {
		return fail(s.putError(ctx, obj.Key, err))
	}
	if err := s.tagSHA256(ctx, *obj); err != nil {
		return 0, err
	}
	return total, nil
}

// tagSHA256 records the hash of an object whose hash was only known after
// its data was sent; on failure the object is removed.
func (s *Store) tagSHA256(ctx context.Context, obj Object) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.stall)
	defer cancel()
	if _, err := s.client.PutObjectTagging(tctx, &s3.PutObjectTaggingInput{
		Bucket: &s.bucket, Key: &obj.Key,
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(metaSHA256), Value: aws.String(obj.SHA256)}}},
	}); err != nil {
		s.cleanup(ctx, obj.Key)
		return s.putError(ctx, obj.Key, err)
	}
	return nil
}
