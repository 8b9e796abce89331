package uploads

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// DefaultReadIdle is how long a request body may send nothing before the
// read fails: long enough for a slow mobile link, short enough that idle
// clients cannot hold connections and upload buffers.
const DefaultReadIdle = 30 * time.Second

// bodyBuffer is the read size from the connection: the server's own
// buffer is 4 KiB, so without it a 1 GiB body takes 262,144 reads.
const bodyBuffer = 64 << 10

// largeBody is the declared length over which a body is read with
// largeBodyBuffer: a large file then takes a quarter of the read system
// calls, for a buffer that is small beside the file's own.
const (
	largeBody       = 8 << 20
	largeBodyBuffer = 256 << 10
)

// smallBodyBuffer is the least read buffer of a body of known size.
const smallBodyBuffer = 512

// ErrIdle means the client sent nothing for longer than the idle timeout.
var ErrIdle = fmt.Errorf("%w: the client stopped sending", ErrMalformed)

// ErrDraining is the cause a server cancels its requests' contexts with
// when its shutdown drain ends before they do: a body read through
// NewBodyReader then fails at once with it (nothing of the upload is
// kept), and the request is answered 503 while its connection is still
// open. It is an ErrUnavailable: the client may retry on another process.
var ErrDraining = fmt.Errorf("%w: the server is shutting down", ErrUnavailable)

// NewBodyReader prepares a request body for streaming: reads from the
// connection in large chunks, and each read must make progress within
// idle (http.ResponseController's read deadline, pushed forward as bytes
// arrive) instead of one deadline for the whole body, which would cut off
// large uploads or let slow clients hold the connection for hours. A
// stalled client gets ErrIdle, and a read of a request whose context ctx
// ends with the cause ErrDraining gets ErrDraining. Wrap body in
// http.MaxBytesReader first.
func NewBodyReader(ctx context.Context, w http.ResponseWriter, body io.ReadCloser, idle time.Duration) io.ReadCloser {
	return NewBodyReaderSize(ctx, w, body, idle, -1)
}

// NewBodyReaderSize is NewBodyReader for a body of declared length size
// (-1 when unknown, as for a chunked body): a body smaller than the read
// buffer gets a buffer of its own size, so a small form does not allocate
// and clear 64 KiB.
func NewBodyReaderSize(ctx context.Context, w http.ResponseWriter, body io.ReadCloser, idle time.Duration, size int64) io.ReadCloser {
	if idle <= 0 {
		idle = DefaultReadIdle
	}
	buf := bodyBuffer
	if size > largeBody {
		buf = largeBodyBuffer
	}
	if size >= 0 && size < bodyBuffer {
		// One byte more, so the read that sees the end fits too.
		buf = max(int(size)+1, smallBodyBuffer)
	}
	d := &deadlineReader{rc: http.NewResponseController(w), r: body, idle: idle}
	context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), ErrDraining) {
			d.draining.Store(true)
			_ = d.rc.SetReadDeadline(time.Now()) // ends a read under way
		}
	})
	return &bufferedBody{Reader: bufio.NewReaderSize(d, buf), c: body}
}

type bufferedBody struct {
	*bufio.Reader
	c io.Closer
}

func (b *bufferedBody) Close() error { return b.c.Close() }

// deadlineReader sets a read deadline before reads, moving it forward at
// most every idle/8 so that fast bodies do not pay for a timer reset on
// every read.
type deadlineReader struct {
	rc          *http.ResponseController
	r           io.Reader
	idle        time.Duration
	set         time.Time // when the deadline was last set
	unsupported bool
	draining    atomic.Bool // the server cut the request (ErrDraining)
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.draining.Load() {
		return 0, ErrDraining
	}
	if !d.unsupported {
		if now := time.Now(); now.Sub(d.set) > d.idle/8 {
			if err := d.rc.SetReadDeadline(now.Add(d.idle)); err != nil {
				d.unsupported = true // a test recorder, an HTTP/2 stream without support
			}
			d.set = now
		}
	}
	n, err := d.r.Read(p)
	if err != nil && d.draining.Load() {
		return n, ErrDraining
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return n, fmt.Errorf("%w (%s): %w", ErrIdle, d.idle, err)
	}
	return n, err
}
