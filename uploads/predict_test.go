package uploads

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
)

// s3Log is a proxy in front of the test's S3 server that writes down
// every request it passes, as "METHOD" plus the names of its query
// parameters ("PUT", "PUT partNumber uploadId", "POST uploads"...).
type s3Log struct {
	mu   sync.Mutex
	reqs []string
	sent atomic.Int64 // request body bytes passed to S3
}

// counted counts the bytes read through it into n.
type counted struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c counted) Read(p []byte) (int, error) {
	k, err := c.ReadCloser.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func (l *s3Log) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reqs
	l.reqs = nil
	return r
}

// newLoggedStore is newTestStore whose requests go through an s3Log.
func newLoggedStore(t *testing.T, partSize, memory int64) (*Store, *s3Log) {
	t.Helper()
	s := testenv.StartS3(t)
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	log := &s3Log{}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the signature covers the host the client saw
		var names []string
		for k := range r.In.URL.Query() {
			if k != "x-id" { // the SDK's name of the operation
				names = append(names, k)
			}
		}
		sort.Strings(names)
		if r.Out.Body != nil {
			r.Out.Body = counted{r.Out.Body, &log.sent}
		}
		log.mu.Lock()
		log.reqs = append(log.reqs, strings.TrimSpace(r.In.Method+" "+strings.Join(names, " ")))
		log.mu.Unlock()
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	st, err := NewStore(context.Background(), Config{
		Endpoint: srv.URL, Region: s.Region, Bucket: s.Bucket,
		AccessKey: s.AccessKey, SecretKey: s.SecretKey, PartSize: partSize, Memory: memory,
		Admission: Admission{BufferWait: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(testenv.Context(t)); err != nil {
		t.Fatal(err)
	}
	log.take()
	return st, log
}

// TestPutMemoryGrowsWithTheFile: a file that fits one part is one
// PutObject and holds about its own size, not a whole part buffer.
func TestPutMemoryGrowsWithTheFile(t *testing.T) {
	const part = 8 << 20
	st, log := newLoggedStore(t, part, 4*part)
	ctx := testenv.Context(t)
	for i, size := range []int{HeadSize + 1, 1 << 20, 3<<20 + 17, part} {
		data := pngFile(size, uint64(200+i))
		st.chunks.peak.Store(0)
		obj, err := st.Put(ctx, fmt.Sprintf("uploads/grow/%d/f/0", i), bytes.NewReader(data), PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if obj.Size != int64(size) || obj.SHA256 != sum(data) {
			t.Errorf("%d bytes: Put = %+v", size, obj)
		}
		if got, err := st.Get(ctx, obj.Key); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: stored bytes differ (err %v)", size, err)
		}
		want := (size + chunkSize - 1) / chunkSize
		if peak := st.chunks.peak.Load(); peak != int64(want) {
			t.Errorf("%d bytes held %d chunks of %d at most, want %d", size, peak, chunkSize, want)
		}
		if reqs := log.take(); len(reqs) != 2 || reqs[0] != "PUT" { // the PUT, then the test's GET
			t.Errorf("%d bytes took S3 requests %v, want one PUT", size, reqs)
		}
	}
	if n := st.chunks.now.Load(); n != 0 {
		t.Errorf("%d chunks not given back", n)
	}
}

// browserBody is a multipart body as a browser sends it: no part declares
// its size, and the file comes where the form has it.
// firstPart reads body, a browser-style request of declared length,
// up to its first part.
func firstPart(t *testing.T, body string) *Part {
	t.Helper()
	return firstPartOf(t, strings.NewReader(body), int64(len(body)))
}

// firstPartOf is firstPart of a browserBody of length n read from r.
func firstPartOf(t *testing.T, r io.Reader, n int64) *Part {
	t.Helper()
	mr, err := NewMultipartReader(r, "multipart/form-data; boundary=B", DefaultReaderLimits)
	if err != nil {
		t.Fatal(err)
	}
	mr.SetLength(n)
	p, err := mr.Next()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func browserBody(parts ...[2]string) (string, string) {
	var b strings.Builder
	for _, p := range parts {
		if strings.HasPrefix(p[0], "file:") {
			fmt.Fprintf(&b, "--B\r\nContent-Disposition: form-data; name=%q; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n%s\r\n", strings.TrimPrefix(p[0], "file:"), p[1])
		} else {
			fmt.Fprintf(&b, "--B\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", p[0], p[1])
		}
	}
	b.WriteString("--B--\r\n")
	return b.String(), "multipart/form-data; boundary=B"
}

// TestPutPredictsTheSizeOfTheLastPart: a large file without a declared
// size streams with one PutObject of the size the request's length
// leaves for it, to the file's partial key, which one server-side copy
// makes the file (cut to its length when more parts follow) before the
// partial object is deleted; the parts after it are exactly theirs.
func TestPutPredictsTheSizeOfTheLastPart(t *testing.T) {
	st, log := newLoggedStore(t, testPart, 4*testPart)
	ctx := testenv.Context(t)
	big := string(pngFile(12<<20, 300))
	other := string(pngFile(7<<20, 301))
	tests := []struct {
		name  string
		body  string
		files []string // in order
		value string   // of the field "after", when it follows
		reqs  []string // of the first file, before the test's own requests
	}{
		{"file last", must(browserBody([2]string{"name", "x"}, [2]string{"file:f", big})), []string{big}, "x",
			[]string{"PUT", "POST uploads", "PUT partNumber uploadId", "POST uploadId", "DELETE"}},
		{"a value after the file", must(browserBody([2]string{"file:f", big}, [2]string{"after", "later"})), []string{big}, "later",
			[]string{"PUT", "POST uploads", "PUT partNumber uploadId", "POST uploadId", "DELETE"}},
		{"another file after the file", must(browserBody([2]string{"file:f", big}, [2]string{"file:g", other})), []string{big, other}, "",
			[]string{"PUT", "POST uploads", "PUT partNumber uploadId", "POST uploadId", "DELETE"}},
		{"no line break after the closing delimiter", strings.TrimSuffix(must(browserBody([2]string{"file:f", big})), "\r\n"), []string{big}, "",
			[]string{"PUT", "POST uploads", "PUT partNumber uploadId", "PUT partNumber uploadId", "POST uploadId", "DELETE"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mr, err := NewMultipartReader(strings.NewReader(tt.body), "multipart/form-data; boundary=B", DefaultReaderLimits)
			if err != nil {
				t.Fatal(err)
			}
			mr.SetLength(int64(len(tt.body)))
			var files int
			var value string
			for {
				p, err := mr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !p.IsFile {
					v, err := mr.ReadValue(p)
					if err != nil {
						t.Fatal(err)
					}
					value = v
					continue
				}
				key := fmt.Sprintf("uploads/predict/%d/f/%d", i, files)
				obj, err := st.Put(ctx, key, p, PutOptions{MaxSize: 20 << 20})
				if err != nil {
					t.Fatal(err)
				}
				if files == 0 {
					if reqs := log.take(); !equal(reqs, tt.reqs) {
						t.Errorf("S3 requests %v, want %v", reqs, tt.reqs)
					}
				}
				want := tt.files[files]
				if obj.Size != int64(len(want)) || obj.SHA256 != sum([]byte(want)) {
					t.Errorf("file %d: Put = %+v, want %d bytes", files, obj, len(want))
				}
				if got, err := st.Get(ctx, key); err != nil || string(got) != want {
					t.Errorf("file %d: stored %d bytes, want %d (err %v)", files, len(got), len(want), err)
				}
				if head, err := st.Head(ctx, key); err != nil || head.SHA256 != sum([]byte(want)) || head.Size != int64(len(want)) {
					t.Errorf("file %d: Head = %+v, %v", files, head, err)
				}
				files++
			}
			if files != len(tt.files) || value != tt.value {
				t.Errorf("read %d files and value %q, want %d and %q", files, value, len(tt.files), tt.value)
			}
			if peak := st.buffers.peak.Load(); peak != 0 {
				t.Errorf("predicted uploads took %d part buffers", peak)
			}
			log.take()
		})
	}
	ups, err := st.MultipartUploads(ctx, "uploads/")
	if err != nil || len(ups) != 0 {
		t.Errorf("unfinished multipart uploads %v (%v)", ups, err)
	}
}

// TestPaddingStaysWithinMaxSize: a file that ends before the size the
// request's length left for it makes formq pad its PUT with zeros, but
// never beyond the field's max_size: a larger prediction is not streamed
// at all (see docs/security.md). The bytes S3 is sent are counted.
func TestPaddingStaysWithinMaxSize(t *testing.T) {
	st, log := newLoggedStore(t, testPart, 4*testPart)
	ctx := testenv.Context(t)
	small := string(pngFile(6<<20, 310))
	after := string(pngFile(12<<20, 311))
	body := must(browserBody([2]string{"file:f", small}, [2]string{"file:g", after}))
	for i, tt := range []struct {
		name    string
		maxSize int64
		padded  bool // the file streamed with one PUT padded to the prediction
	}{
		{"prediction within max_size", 20 << 20, true},
		{"prediction over max_size", 10 << 20, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := firstPart(t, body)
			log.take()
			log.sent.Store(0)
			key := fmt.Sprintf("uploads/padding/%d/f/0", i)
			obj, err := st.Put(ctx, key, p, PutOptions{MaxSize: tt.maxSize})
			if err != nil {
				t.Fatal(err)
			}
			sent, reqs := log.sent.Load(), log.take()
			if obj.Size != int64(len(small)) || obj.SHA256 != sum([]byte(small)) {
				t.Errorf("Put = %+v, want %d bytes", obj, len(small))
			}
			if got, err := st.Get(ctx, key); err != nil || string(got) != small {
				t.Errorf("stored %d bytes, want %d (err %v)", len(got), len(small), err)
			}
			if p.Predicted <= tt.maxSize != tt.padded {
				t.Fatalf("prediction %d against max_size %d: the case does not test what it says", p.Predicted, tt.maxSize)
			}
			// Besides the data, S3 gets a few small XML documents
			// (completing the multipart upload, the tag).
			const xml = 4 << 10
			if want := p.Predicted; tt.padded && (reqs[0] != "PUT" || sent < want || sent > want+xml) {
				t.Errorf("S3 was sent %d bytes in %v, want one PUT of the prediction, %d bytes", sent, reqs, want)
			}
			if want := int64(len(small)); !tt.padded && (reqs[0] != "POST uploads" || sent < want || sent > want+xml) {
				t.Errorf("S3 was sent %d bytes in %v, want the file's own %d bytes in a multipart upload", sent, reqs, want)
			}
			if sent > tt.maxSize {
				t.Errorf("S3 was sent %d bytes for a field of max_size %d", sent, tt.maxSize)
			}
		})
	}
}

// TestPartPredicted: the prediction is the last part's exact size, and
// an upper bound for any other part.
func TestPartPredicted(t *testing.T) {
	data := strings.Repeat("0123456789abcdef", 4096) // 64 KiB: many buffer refills
	for _, tt := range []struct {
		name   string
		body   string
		exact  bool
		length bool
	}{
		{"last", must(browserBody([2]string{"a", "1"}, [2]string{"file:f", data})), true, true},
		{"first of two", must(browserBody([2]string{"file:f", data}, [2]string{"b", "2"})), false, true},
		{"no length", must(browserBody([2]string{"file:f", data})), false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mr, err := NewMultipartReader(strings.NewReader(tt.body), "multipart/form-data; boundary=B", DefaultReaderLimits)
			if err != nil {
				t.Fatal(err)
			}
			if tt.length {
				mr.SetLength(int64(len(tt.body)))
			}
			for {
				p, err := mr.Next()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !p.IsFile {
					continue
				}
				got, err := io.ReadAll(p)
				if err != nil || string(got) != data {
					t.Fatalf("read %d bytes, %v", len(got), err)
				}
				switch {
				case !tt.length && p.Predicted != -1:
					t.Errorf("Predicted = %d without a length, want -1", p.Predicted)
				case tt.exact && p.Predicted != int64(len(data)):
					t.Errorf("Predicted = %d, want %d", p.Predicted, len(data))
				case tt.length && !tt.exact && p.Predicted <= int64(len(data)):
					t.Errorf("Predicted = %d, want over %d", p.Predicted, len(data))
				}
			}
		})
	}
}

func must(body, _ string) string { return body }

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }
