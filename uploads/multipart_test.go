package uploads

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeFilename(t *testing.T) {
	long := strings.Repeat("é", 150) + ".png" // 300 bytes of é
	tests := []struct {
		name, in, want string
	}{
		{"plain", "me.png", "me.png"},
		{"windows traversal", `..\..\evil`, "evil"},
		{"windows path", `C:\Users\ada\Pictures\me.png`, "me.png"},
		{"unix traversal", "../../etc/passwd", "passwd"},
		{"absolute", "/etc/shadow", "shadow"},
		{"trailing slash", "dir/", "dir"},
		{"only dots", "..", ""},
		{"dot", ".", ""},
		{"only slashes", "///", ""},
		{"nul byte", "evil.php\x00.png", "evil.php.png"},
		{"nul hiding a separator", "a\x00/\x00..", ""},
		{"control chars", "a\r\nb\tc\x1b[31m.txt", "abc[31m.txt"},
		{"bidi override", "invoice\u202egpj.exe", "invoicegpj.exe"},
		{"unicode kept", "Résumé 履歴書 🎉.pdf", "Résumé 履歴書 🎉.pdf"},
		{"invalid utf-8 dropped", "ab\xff\xfecd.txt", "abcd.txt"},
		{"replacement char kept", "a\uFFFDb", "a\uFFFDb"},
		{"spaces trimmed", "  me.png  ", "me.png"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SanitizeFilename(tt.in); got != tt.want {
				t.Errorf("SanitizeFilename(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("long name", func(t *testing.T) {
		got := SanitizeFilename(long)
		if len(got) > MaxFilenameBytes || !utf8.ValidString(got) || !strings.HasPrefix(long, got) || len(got) < MaxFilenameBytes-4 {
			t.Errorf("SanitizeFilename(long) = %d bytes %q, want a valid prefix of at most %d bytes", len(got), got, MaxFilenameBytes)
		}
	})
}

// body builds a multipart body from raw parts.
func body(t *testing.T, build func(w *multipart.Writer)) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	build(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, w.FormDataContentType()
}

func readAll(mr *MultipartReader) (map[string]string, error) {
	got := map[string]string{}
	for {
		p, err := mr.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if p.IsFile {
			b, err := io.ReadAll(p)
			if err != nil {
				return got, err
			}
			got[p.Field] = "file:" + p.Filename + ":" + string(b)
			continue
		}
		v, err := mr.ReadValue(p)
		if err != nil {
			return got, err
		}
		got[p.Field] = v
	}
}

func TestMultipartReaderReadsPartsInOrder(t *testing.T) {
	b, ct := body(t, func(w *multipart.Writer) {
		_ = w.WriteField("name", "Ada")
		fw, _ := w.CreateFormFile("avatar", `..\..\evil.png`)
		_, _ = fw.Write([]byte("PNGDATA"))
		_ = w.WriteField("email", "ada@example.com")
	})
	mr, err := NewMultipartReader(b, ct, DefaultReaderLimits)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(mr)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name": "Ada", "avatar": "file:evil.png:PNGDATA", "email": "ada@example.com"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestMultipartReaderLimits(t *testing.T) {
	lim := ReaderLimits{MaxParts: 10, MaxValueBytes: 100, MaxValuesBytes: 250, MaxHeaderBytes: 1024}
	tests := []struct {
		name  string
		ctype string // overrides the writer's
		raw   string // overrides the built body
		build func(w *multipart.Writer)
		want  error
	}{
		{name: "fits", build: func(w *multipart.Writer) {
			for i := range 10 {
				_ = w.WriteField(fmt.Sprint("f", i), strings.Repeat("x", 20))
			}
		}},
		{name: "too many parts", want: ErrTooManyParts, build: func(w *multipart.Writer) {
			for i := range 11 {
				_ = w.WriteField(fmt.Sprint("f", i), "")
			}
		}},
		{name: "value too long", want: ErrValueTooLong, build: func(w *multipart.Writer) {
			_ = w.WriteField("a", strings.Repeat("x", 101))
		}},
		{name: "values too long together", want: ErrValueTooLong, build: func(w *multipart.Writer) {
			for i := range 3 {
				_ = w.WriteField(fmt.Sprint("f", i), strings.Repeat("x", 100))
			}
		}},
		{name: "files do not count as values", build: func(w *multipart.Writer) {
			fw, _ := w.CreateFormFile("f", "a.bin")
			_, _ = fw.Write(bytes.Repeat([]byte("x"), 10_000))
		}},
		{name: "huge part header", want: ErrMalformed, build: func(w *multipart.Writer) {
			_, _ = w.CreatePart(map[string][]string{
				"Content-Disposition": {`form-data; name="a"`},
				"X-Padding":           {strings.Repeat("p", 100_000)},
			})
		}},
		{name: "huge preamble", want: ErrMalformed, ctype: "multipart/form-data; boundary=B",
			raw: strings.Repeat("junk line\r\n", 10_000) + "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--B--\r\n"},
		{name: "no name", want: ErrMalformed, ctype: "multipart/form-data; boundary=B",
			raw: "--B\r\nContent-Disposition: form-data\r\n\r\nv\r\n--B--\r\n"},
		{name: "truncated", want: ErrMalformed, ctype: "multipart/form-data; boundary=B",
			raw: "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue without end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader
			ct := tt.ctype
			if tt.raw != "" {
				r = strings.NewReader(tt.raw)
			} else {
				b, wct := body(t, tt.build)
				r, ct = b, wct
			}
			mr, err := NewMultipartReader(r, ct, lim)
			if err != nil {
				t.Fatal(err)
			}
			_, err = readAll(mr)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewMultipartReaderWantsABoundary(t *testing.T) {
	for _, ct := range []string{"", "multipart/form-data", "text/plain; boundary=x", "multipart/form-data; boundary="} {
		if _, err := NewMultipartReader(strings.NewReader(""), ct, DefaultReaderLimits); !errors.Is(err, ErrMalformed) {
			t.Errorf("content type %q: err = %v, want ErrMalformed", ct, err)
		}
	}
}

// emptyParts streams n empty parts without building them in memory.
type emptyParts struct {
	n, sent int
	buf     []byte
}

const emptyPart = "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n"

func (e *emptyParts) Read(p []byte) (int, error) {
	for len(e.buf) < len(p) && e.sent < e.n {
		e.buf = append(e.buf, emptyPart...)
		e.sent++
	}
	if len(e.buf) == 0 {
		if e.sent == e.n {
			e.sent++
			e.buf = append(e.buf, "--B--\r\n"...)
		} else {
			return 0, io.EOF
		}
	}
	n := copy(p, e.buf)
	e.buf = e.buf[n:]
	return n, nil
}

func TestMultipartReaderRefusesManyEmptyPartsEarly(t *testing.T) {
	src := &emptyParts{n: 100_000}
	mr, err := NewMultipartReader(src, "multipart/form-data; boundary=B", DefaultReaderLimits)
	if err != nil {
		t.Fatal(err)
	}
	_, err = readAll(mr)
	if !errors.Is(err, ErrTooManyParts) {
		t.Fatalf("err = %v, want ErrTooManyParts", err)
	}
	// It stopped after the limit, not after reading all 100,000 parts.
	if src.sent > DefaultReaderLimits.MaxParts+200 {
		t.Errorf("read %d parts before refusing; the limit is %d", src.sent, DefaultReaderLimits.MaxParts)
	}
}
