package uploads

import (
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// chunkSize is the step by which a file's memory grows while it is read:
// a 1 MiB file holds four chunks, not a whole part buffer. The first
// chunk is the head the file's type is sniffed from.
const chunkSize = HeadSize

// chunks holds the bytes of one file or one part in chunks taken from a
// shared pool as the bytes arrive, and given back by release.
type chunks struct {
	pool *sync.Pool // of *[]byte of chunkSize
	c    []*[]byte
	n    int // bytes held
	held *chunkCount
}

// chunkCount counts the chunks held by every upload of a Store, and the
// most ever held at once.
type chunkCount struct{ now, peak atomic.Int64 }

func (c *chunkCount) add(d int64) {
	n := c.now.Add(d)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
}

func newChunks(pool *sync.Pool, held *chunkCount) *chunks { return &chunks{pool: pool, held: held} }

// fill reads src until the chunks hold limit bytes or src ends; eof
// reports the end, as fill of one buffer does.
func (b *chunks) fill(src io.Reader, limit int) (n int, eof bool, err error) {
	for b.n < limit {
		i, off := b.n/chunkSize, b.n%chunkSize
		if i == len(b.c) {
			// A chunk is taken only for a byte that came: a file that
			// ends at a chunk's end holds no empty one.
			var one [1]byte
			m, eof, err := fill(src, one[:])
			if m == 0 {
				return n, eof, err
			}
			c := b.pool.Get().(*[]byte)
			(*c)[0] = one[0]
			b.c = append(b.c, c)
			b.held.add(1)
			b.n++
			n++
			if eof || err != nil {
				return n, eof, err
			}
			continue
		}
		c := (*b.c[i])[off:min(chunkSize, off+limit-b.n)]
		m, eof, err := fill(src, c)
		b.n += m
		n += m
		if eof || err != nil {
			return n, eof, err
		}
	}
	return n, false, nil
}

// head is the start of the held bytes, at most one chunk.
func (b *chunks) head() []byte {
	if len(b.c) == 0 {
		return nil
	}
	return (*b.c[0])[:min(b.n, chunkSize)]
}

// hash writes the held bytes to h.
func (b *chunks) hash(h hash.Hash) {
	for i, left := 0, b.n; left > 0; i++ {
		c := *b.c[i]
		k := min(left, len(c))
		h.Write(c[:k])
		left -= k
	}
}

// reader reads the held bytes; it seeks, so the SDK can retry a request.
func (b *chunks) reader() *chunkReader { return &chunkReader{b: b} }

// reset empties the chunks, keeping them for the next fill.
func (b *chunks) reset() { b.n = 0 }

// release gives every chunk back to the pool.
func (b *chunks) release() {
	for _, c := range b.c {
		b.pool.Put(c)
	}
	b.held.add(-int64(len(b.c)))
	b.c, b.n = nil, 0
}

// chunkReader is an io.ReadSeeker over chunks.
type chunkReader struct {
	b    *chunks
	off  int64
	tick func() // called on every read: progress for the stall deadline
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.tick != nil {
		r.tick()
	}
	if r.off >= int64(r.b.n) {
		return 0, io.EOF
	}
	i, off := int(r.off/chunkSize), int(r.off%chunkSize)
	end := min(chunkSize, r.b.n-i*chunkSize)
	n := copy(p, (*r.b.c[i])[off:end])
	r.off += int64(n)
	return n, nil
}

// WriteTo hands the chunks to w without copying them through a buffer.
func (r *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.off < int64(r.b.n) {
		if r.tick != nil {
			r.tick()
		}
		i, off := int(r.off/chunkSize), int(r.off%chunkSize)
		end := min(chunkSize, r.b.n-i*chunkSize)
		n, err := w.Write((*r.b.c[i])[off:end])
		r.off += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

var errSeek = errors.New("uploads: seek out of range")

func (r *chunkReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += int64(r.b.n)
	}
	if offset < 0 || offset > int64(r.b.n) {
		return r.off, errSeek
	}
	r.off = offset
	return offset, nil
}
