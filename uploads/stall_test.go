package uploads

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
)

// pauseAfter pauses the test's S3 server once n bytes were read, so that
// the upload is in flight when S3 hangs.
type pauseAfter struct {
	r     io.Reader
	n     int
	read  int
	pause func()
	once  sync.Once
}

func (p *pauseAfter) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += n
	if p.read >= p.n {
		p.once.Do(p.pause)
	}
	return n, err
}

// TestPutFailsInBoundedTimeWhenS3Hangs: an upload whose S3 requests stop
// getting answers (the server is stopped with SIGSTOP mid-upload) fails
// with ErrUnavailable within a bound set by the stall timeout, gives its
// buffers back and, once S3 is back, nothing of it is stored: objects
// are removed, and a multipart upload that could not be aborted while S3
// hung is the janitor's (it is aborted by a sweep).
func TestPutFailsInBoundedTimeWhenS3Hangs(t *testing.T) {
	const stall = time.Second
	s, srv := testenv.StartPrivateS3(t)
	ctx := testenv.Context(t)
	st, err := NewStore(ctx, Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
		PartSize: testPart, Memory: 4 * testPart, StallTimeout: stall,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	big := pngFile(12<<20, 400)
	browser, _ := browserBody([2]string{"file:f", string(big)})
	tests := []struct {
		name  string
		src   func() io.Reader
		after int  // bytes read before S3 hangs
		part  bool // src is a browser's body: Put gets its first part
	}{
		{"one PutObject", func() io.Reader { return bytes.NewReader(pngFile(1<<20, 401)) }, 1 << 20, false},
		{"multipart, a part in flight", func() io.Reader { return bytes.NewReader(big) }, testPart + testPart/2, false},
		{"streamed at its predicted size", func() io.Reader { return strings.NewReader(browser) }, 3 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src io.Reader = &pauseAfter{r: tt.src(), n: tt.after, pause: func() { srv.Pause(t) }}
			if tt.part {
				src = firstPartOf(t, src, int64(len(browser)))
			}
			start := time.Now()
			_, err := st.Put(ctx, "uploads/stall/s/f/0", src, PutOptions{})
			took := time.Since(start)
			srv.Resume(t)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Put to a hung S3 = %v, want ErrUnavailable", err)
			}
			// The in-flight request, then the abort or delete, each
			// bounded by the stall timeout; the rest is margin for a
			// loaded machine.
			if took > 20*stall {
				t.Errorf("Put to a hung S3 took %s, want about %s", took, 2*stall)
			}
			if n, c := st.buffers.inUse.Load(), st.chunks.now.Load(); n != 0 || c != 0 {
				t.Errorf("after the failure %d part buffers and %d chunks are still held", n, c)
			}
			// Once S3 answers again, it may still carry out a request it
			// took in while it hung (a whole PUT whose client gave up);
			// the janitor removes that, like anything it could not be
			// told to remove while it hung. Sweep once S3 has finished
			// with those requests, or a PUT it carries out after an
			// empty listing is left behind.
			srv.WaitSettled(t, 30*time.Second)
			j := NewJanitor(st, JanitorConfig{Log: slog.New(slog.DiscardHandler),
				Keep: func(context.Context, string, string) (bool, error) { return false, nil }})
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				if _, err := j.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				keys, _ := st.List(ctx, "uploads/stall/")
				ups, _ := st.MultipartUploads(ctx, "uploads/stall/")
				if len(keys)+len(ups) == 0 || time.Now().After(deadline) {
					break
				}
			}
			assertNothingStored(t, st, "uploads/stall/")
		})
	}
}

// TestDrainCutsAStreamedPutWaitingForS3: the shutdown drain cuts a
// browser's streamed upload whose PUT is waiting for S3 to take more of
// the body (S3 paused), where the body's own read would fail only once S3
// took some: the PUT is cut at once and Put fails with ErrDraining (the
// API's 503), rather than streaming on once S3 does, and nothing is at
// the file's key.
func TestDrainCutsAStreamedPutWaitingForS3(t *testing.T) {
	s, srv := testenv.StartPrivateS3(t)
	st, err := NewStore(testenv.Context(t), Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
		PartSize: testPart, Memory: 4 * testPart, StallTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(testenv.Context(t)); err != nil {
		t.Fatal(err)
	}
	// More than the connection's buffers hold once S3 stops reading.
	body, _ := browserBody([2]string{"file:f", string(pngFile(32<<20, 403))})
	paused := make(chan struct{})
	p := firstPartOf(t, &pauseAfter{r: strings.NewReader(body), n: 3 << 20, pause: func() {
		srv.Pause(t)
		close(paused)
	}}, int64(len(body)))
	ctx, cut := context.WithCancelCause(testenv.Context(t))
	const key = "uploads/drain/s/f/0"
	put := make(chan error, 1)
	go func() {
		_, err := st.Put(ctx, key, p, PutOptions{})
		put <- err
	}()
	<-paused
	time.Sleep(300 * time.Millisecond) // the PUT waits for S3
	cut(ErrDraining)
	time.Sleep(time.Second) // a cut PUT has ended by now; one not cut still waits
	srv.Resume(t)
	if err := <-put; !errors.Is(err, ErrDraining) {
		t.Fatalf("Put cut by the drain = %v, want ErrDraining", err)
	}
	if _, err := st.Head(testenv.Context(t), key); !errors.Is(err, ErrNotFound) {
		t.Errorf("the cut upload is at its key: %v", err)
	}
}
