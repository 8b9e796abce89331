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
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the multipart reader, beyond the body's own byte limit.
type ReaderLimits struct {
	MaxParts      int   // parts of any kind; more is ErrTooManyParts
	MaxValueBytes int64 // bytes of one non-file value; more is ErrValueTooLong
}

// DefaultReaderLimits suit a form: a thousand parts, 1 MiB per value.
var DefaultReaderLimits = ReaderLimits{MaxParts: 1000, MaxValueBytes: 1 << 20}

// Errors of the multipart reader. Errors of the body itself (a
// *http.MaxBytesError, a closed connection) come back wrapped, unchanged.
var (
	ErrMalformed    = errors.New("uploads: malformed multipart body")
	ErrTooManyParts = errors.New("uploads: too many parts")
	ErrValueTooLong = errors.New("uploads: form value too long")
)

// MultipartReader hands out the parts of a multipart/form-data body one at
// a time, as they arrive: nothing is buffered beyond the part being read.
type MultipartReader struct {
	r     *multipart.Reader
	lim   ReaderLimits
	parts int
}

// Part is one form value or one file.
type Part struct {
	*multipart.Part
	Field    string // the form field name
	Filename string // sanitised client filename; empty for plain values
	IsFile   bool   // the part carried a filename parameter
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
	return &MultipartReader{r: multipart.NewReader(body, params["boundary"]), lim: lim}, nil
}

// Next returns the next part, or io.EOF after the last one.
func (m *MultipartReader) Next() (*Part, error) {
	p, err := m.r.NextRawPart()
	if err == io.EOF {
		return nil, io.EOF
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
	return &Part{Part: p, Field: params["name"], Filename: SanitizeFilename(params["filename"]), IsFile: isFile}, nil
}

// ReadValue reads a plain value whole, up to the reader's limit.
func (m *MultipartReader) ReadValue(p *Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, m.lim.MaxValueBytes+1))
	if err != nil {
		return "", bodyError(err)
	}
	if int64(len(b)) > m.lim.MaxValueBytes {
		return "", fmt.Errorf("%w: field %q is over %d bytes", ErrValueTooLong, p.Field, m.lim.MaxValueBytes)
	}
	return string(b), nil
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

// SanitizeFilename keeps the last path element of a client's file name
// (either slash), drops control characters and invalid UTF-8, and bounds
// its length. The result is only ever metadata: object keys are made by
// the server.
func SanitizeFilename(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(strings.TrimRight(name, "/"))
	var b strings.Builder
	for _, r := range name {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '/' {
			continue
		}
		b.WriteRune(r)
	}
	out := strings.TrimSpace(b.String())
	if out == "." || out == ".." {
		out = ""
	}
	for len(out) > 200 {
		_, size := utf8.DecodeLastRuneInString(out)
		out = out[:len(out)-size]
	}
	return out
}
