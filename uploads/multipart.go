package uploads

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ReaderLimits bound a multipart body beyond its byte limit (max_body), so
// that no body, however shaped, makes the reader hold much memory or spin
// for long.
type ReaderLimits struct {
	MaxParts       int   // parts of any kind; more is ErrTooManyParts
	MaxValueBytes  int64 // bytes of one non-file value; more is ErrValueTooLong
	MaxValuesBytes int64 // bytes of all non-file values together; more is ErrValueTooLong
	MaxHeaderBytes int64 // bytes of one part's headers (or the preamble); more is ErrMalformed
}

// DefaultReaderLimits suit a form: a thousand parts, 1 MiB per value and
// 4 MiB of values in all, 16 KiB of headers per part.
var DefaultReaderLimits = ReaderLimits{MaxParts: 1000, MaxValueBytes: 1 << 20, MaxValuesBytes: 4 << 20, MaxHeaderBytes: 16 << 10}

// Errors of the multipart reader. Errors of the body itself (a
// *http.MaxBytesError, a closed connection) come back wrapped, unchanged.
var (
	ErrMalformed    = errors.New("uploads: malformed multipart body")
	ErrTooManyParts = errors.New("uploads: too many parts")
	ErrValueTooLong = errors.New("uploads: form value too long")
)

// errHeaderTooLong is what the header guard answers once a part's headers
// have used up their bytes; Next reports it as ErrMalformed.
var errHeaderTooLong = errors.New("part headers too long")

// multipartBuffer is the read buffer of mime/multipart: the guard lets
// this much through beyond the header limit, since a buffer fill may
// carry the start of the part's content.
const multipartBuffer = 4096

// MultipartReader hands out the parts of a multipart/form-data body one at
// a time, as they arrive: nothing is buffered beyond the part being read.
type MultipartReader struct {
	r      *multipart.Reader
	guard  *headerGuard
	length int64 // of the whole body, or -1 (SetLength)
	close  int64 // bytes of the closing delimiter a browser sends
	lim    ReaderLimits
	parts  int
	values int64
	cur    *Part
}

// Part is one form value or one file.
type Part struct {
	*multipart.Part
	Field    string // the form field name
	Filename string // sanitised client filename; empty for plain values
	IsFile   bool   // the part carried a filename parameter
	// Size is the part's own Content-Length header, or -1. Browsers do not
	// send it; a script that does lets Put stream the file with a single
	// PutObject, and a wrong one fails the upload.
	Size int64
	// Predicted is the most the part's content can be, from the body's
	// length (SetLength): its size exactly when it is the body's last
	// part, as browsers send a form whose file input comes last. -1 when
	// unknown. It is known once the part's first bytes have been read
	// (see headerGuard.locate).
	Predicted int64

	guard     *headerGuard // locates the part in the body; nil: no prediction
	left      int64        // the body's length less its closing delimiter
	delivered int64        // content bytes read so far
}

// Read reads the part's content.
func (p *Part) Read(b []byte) (int, error) {
	if p.guard == nil || p.Predicted >= 0 {
		return p.Part.Read(b)
	}
	// The guard may give up on the part during the read (p.guard = nil).
	g := p.guard
	g.part = p
	n, err := p.Part.Read(b)
	g.part = nil
	p.delivered += int64(n)
	return n, err
}

// NewMultipartReader reads body per its Content-Type header value.
func NewMultipartReader(body io.Reader, contentType string, lim ReaderLimits) (*MultipartReader, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, fmt.Errorf("%w: want multipart/form-data with a boundary", ErrMalformed)
	}
	if lim.MaxParts <= 0 {
		lim.MaxParts = DefaultReaderLimits.MaxParts
	}
	if lim.MaxValueBytes <= 0 {
		lim.MaxValueBytes = DefaultReaderLimits.MaxValueBytes
	}
	if lim.MaxValuesBytes <= 0 {
		lim.MaxValuesBytes = max(DefaultReaderLimits.MaxValuesBytes, lim.MaxValueBytes)
	}
	if lim.MaxHeaderBytes <= 0 {
		lim.MaxHeaderBytes = DefaultReaderLimits.MaxHeaderBytes
	}
	g := &headerGuard{r: body}
	boundary := params["boundary"]
	return &MultipartReader{r: multipart.NewReader(g, boundary), guard: g, length: -1,
		close: int64(len("\r\n--" + boundary + "--\r\n")), lim: lim}, nil
}

// SetLength tells the reader the body's whole length (the request's
// Content-Length; -1 when unknown), from which each part learns the most
// its content can be (Part.Predicted).
func (m *MultipartReader) SetLength(n int64) { m.length = n }

// Next returns the next part, or io.EOF after the last one. What the
// caller left unread of the previous part is read past first.
func (m *MultipartReader) Next() (*Part, error) {
	if m.cur != nil {
		if _, err := io.Copy(io.Discard, m.cur); err != nil {
			return nil, bodyError(err)
		}
		m.cur = nil
	}
	m.guard.arm(m.lim.MaxHeaderBytes + multipartBuffer)
	p, err := m.r.NextRawPart()
	m.guard.disarm()
	if err == io.EOF {
		return nil, io.EOF
	}
	if errors.Is(err, errHeaderTooLong) {
		return nil, fmt.Errorf("%w: part %d has over %d bytes of headers", ErrMalformed, m.parts+1, m.lim.MaxHeaderBytes)
	}
	if err != nil {
		return nil, bodyError(err)
	}
	m.parts++
	if m.parts > m.lim.MaxParts {
		return nil, fmt.Errorf("%w (max %d)", ErrTooManyParts, m.lim.MaxParts)
	}
	disp, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil || disp != "form-data" || params["name"] == "" {
		return nil, fmt.Errorf("%w: part %d has no form-data name", ErrMalformed, m.parts)
	}
	_, isFile := params["filename"]
	m.cur = &Part{Part: p, Field: params["name"], Filename: SanitizeFilename(params["filename"]), IsFile: isFile, Size: -1, Predicted: -1}
	if m.length >= 0 && isFile {
		m.cur.guard, m.cur.left = m.guard, m.length-m.close
	}
	if cl := p.Header.Get("Content-Length"); cl != "" && isFile {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: part %d has a bad Content-Length", ErrMalformed, m.parts)
		}
		m.cur.Size = n
	}
	return m.cur, nil
}

// ReadValue reads a plain value whole, up to the reader's limits.
func (m *MultipartReader) ReadValue(p *Part) (string, error) {
	limit := min(m.lim.MaxValueBytes, m.lim.MaxValuesBytes-m.values)
	b, err := io.ReadAll(io.LimitReader(p, limit+1))
	if err != nil {
		return "", bodyError(err)
	}
	if int64(len(b)) > limit {
		if limit < m.lim.MaxValueBytes {
			return "", fmt.Errorf("%w: the form's values are over %d bytes", ErrValueTooLong, m.lim.MaxValuesBytes)
		}
		return "", fmt.Errorf("%w: field %q is over %d bytes", ErrValueTooLong, p.Field, m.lim.MaxValueBytes)
	}
	m.values += int64(len(b))
	return string(b), nil
}

// headerGuard bounds the bytes read while the multipart reader looks for
// the next part's headers: mime/multipart itself allows 10 MiB per part.
type headerGuard struct {
	r     io.Reader
	armed bool
	left  int64
	total int64  // bytes read through the guard
	base  []byte // the multipart reader's buffer, whole (see locate)
	part  *Part  // whose Read is under way, to locate
}

// locate learns where the part being read starts in the body, from a read
// that refills mime/multipart's buffer (p, a tail of that buffer): the
// buffer first moves its unread bytes to its front, so at a refill its
// first byte is the part's next content byte, which lies total-off bytes
// into the body (off: the unread bytes before p). Less the content the
// part has delivered, that is where the content starts; the body's length
// less the closing delimiter then says how long it can be. Should the
// buffer ever not be read that way, nothing is predicted.
func (g *headerGuard) locate(p []byte) {
	if g.base == nil && len(p) > 0 && cap(p) >= multipartBuffer {
		g.base = p[:cap(p)] // the first refill reads into the whole buffer
	}
	pt := g.part
	if pt == nil || g.base == nil || len(p) == 0 || cap(p) > cap(g.base) {
		return
	}
	off := cap(g.base) - cap(p)
	if &g.base[off] != &p[0] {
		pt.guard = nil
		return
	}
	start := g.total - int64(off) - pt.delivered
	if size := pt.left - start; size >= 0 {
		pt.Predicted = size
	} else {
		pt.guard = nil
	}
}

func (g *headerGuard) arm(n int64) { g.armed, g.left = true, n }
func (g *headerGuard) disarm()     { g.armed = false }

func (g *headerGuard) Read(p []byte) (int, error) {
	g.locate(p)
	if !g.armed {
		n, err := g.r.Read(p)
		g.total += int64(n)
		return n, err
	}
	if g.left <= 0 {
		return 0, errHeaderTooLong
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, err := g.r.Read(p)
	g.left -= int64(n)
	g.total += int64(n)
	return n, err
}

// bodyError keeps errors of the body itself (its size limit, the
// connection, a cancelled request) as they are and marks everything else,
// a truncated or broken body included, as malformed.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	var netErr net.Error
	if errors.As(err, &tooBig) || errors.As(err, &netErr) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrMalformed, err)
}

// MaxFilenameBytes bounds a sanitised file name.
const MaxFilenameBytes = 200

// SanitizeFilename keeps the last path element of a client's file name
// (either slash), drops control characters, bidirectional overrides (which
// make "gpj.exe" look like "exe.jpg") and invalid UTF-8, and bounds its
// length to MaxFilenameBytes without splitting a character. The result is
// only ever metadata: object keys are made by the server.
func SanitizeFilename(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	var b strings.Builder
	for i, r := range name {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(name[i:]); size <= 1 {
				continue
			}
		}
		if unicode.IsControl(r) || isBidiControl(r) {
			continue
		}
		b.WriteRune(r)
	}
	out := path.Base(strings.TrimRight(b.String(), "/"))
	out = strings.TrimSpace(out)
	if out == "." || out == ".." || out == "/" {
		out = ""
	}
	for len(out) > MaxFilenameBytes {
		_, size := utf8.DecodeLastRuneInString(out)
		out = out[:len(out)-size]
	}
	return out
}

// isBidiControl reports the invisible characters that reorder text.
func isBidiControl(r rune) bool {
	return r == '\u200e' || r == '\u200f' || r == '\u061c' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}
