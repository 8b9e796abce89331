package uploads

import (
	"context"
	"io"
	"net"
	"sync"
)

// writeBuffer is the size of the writes that carry a request body to S3.
const writeBuffer = 256 << 10

// writePool holds the buffers of bodies on their way to S3: one per
// request being sent, given back when its body is written.
var writePool = sync.Pool{New: func() any {
	b := make([]byte, writeBuffer)
	return &b
}}

// largeWriteConn is a connection to S3 that writes request bodies in
// writes of writeBuffer bytes. The HTTP transport hands a body to the
// connection's ReadFrom, which for a plain TCP connection copies it
// through a 32 KiB buffer: a system call per 32 KiB, where the S3 server
// reading the other end and the API both pay per call. (Over https, TLS
// frames the body itself and this is not used.)
type largeWriteConn struct{ net.Conn }

// ReadFrom writes r to the connection, each write a full buffer but the
// last.
func (c largeWriteConn) ReadFrom(r io.Reader) (int64, error) {
	bp := writePool.Get().(*[]byte)
	defer writePool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, eof, err := fill(r, buf)
		if n > 0 {
			w, werr := c.Conn.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if eof || err != nil {
			return total, err
		}
	}
}

// largeWrites makes a dialer's connections largeWriteConns.
func largeWrites(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return largeWriteConn{c}, nil
	}
}
