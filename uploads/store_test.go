package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const testPart = 5 << 20 // S3's minimum part size, so multipart starts early

// newTestStore gives the test its own bucket on the shared versitygw.
func newTestStore(t *testing.T, partSize, memory int64) *Store {
	t.Helper()
	s := testenv.StartS3(t)
	st, err := NewStore(context.Background(), Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket,
		AccessKey: s.AccessKey, SecretKey: s.SecretKey, PartSize: partSize, Memory: memory,
		Admission: Admission{BufferWait: time.Minute}, // these tests bound memory; admission has its own
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(testenv.Context(t)); err != nil {
		t.Fatal(err)
	}
	return st
}

// randomBytes is deterministic noise, so every size hashes differently.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// pngFile is a file that sniffs as PNG, padded with noise to n bytes.
func pngFile(n int, seed uint64) []byte {
	b := randomBytes(n, seed)
	copy(b, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// assertNothingStored checks that no object and no unfinished multipart
// upload is left under prefix.
func assertNothingStored(t *testing.T, st *Store, prefix string) {
	t.Helper()
	ctx := context.Background()
	keys, err := st.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("objects left behind: %v", keys)
	}
	ups, err := st.MultipartUploads(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 0 {
		t.Errorf("unfinished multipart uploads left behind: %v", ups)
	}
}

func TestPutStoresFilesOfEverySize(t *testing.T) {
	st := newTestStore(t, testPart, 4*testPart)
	ctx := testenv.Context(t)
	sizes := []int{0, 1, 100, HeadSize - 1, HeadSize, HeadSize + 1, testPart - 1, testPart, testPart + 1, 12 << 20}
	for i, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := randomBytes(size, uint64(i))
			if size >= 16 {
				data = pngFile(size, uint64(i))
			}
			key := fmt.Sprintf("uploads/a/s/f/%d", size)
			obj, err := st.Put(ctx, key, bytes.NewReader(data), PutOptions{Filename: "ré sumé.png"})
			if err != nil {
				t.Fatal(err)
			}
			wantType := "application/octet-stream"
			if size >= 16 {
				wantType = "image/png"
			} else if size > 0 {
				wantType = Sniff(data)
			}
			if obj.Key != key || obj.Size != int64(size) || obj.SHA256 != sum(data) || obj.ContentType != wantType || obj.Filename != "ré sumé.png" {
				t.Errorf("Put = %+v, want size %d, sha %s, type %s", obj, size, sum(data), wantType)
			}
			got, err := st.Get(ctx, key)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("stored bytes differ (got %d bytes, err %v)", len(got), err)
			}
			head, err := st.Head(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if head.Size != int64(size) || head.ContentType != wantType || head.SHA256 != sum(data) || head.Filename != "ré sumé.png" {
				t.Errorf("Head = %+v", head)
			}
		})
	}
	assertNothingStored(t, st, "uploads/none/")
	if ups, _ := st.MultipartUploads(ctx, ""); len(ups) != 0 {
		t.Errorf("unfinished multipart uploads after successful puts: %v", ups)
	}
}

// failingReader yields n bytes of data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

var errClientGone = errors.New("client gone")

func TestPutRefusalsLeaveNothing(t *testing.T) {
	st := newTestStore(t, testPart, 4*testPart)
	ctx := testenv.Context(t)
	html := []byte("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")
	tests := []struct {
		name    string
		src     io.Reader
		opts    PutOptions
		check   func(error) bool
		wantErr string
	}{
		{"over size in the first buffer", bytes.NewReader(pngFile(1000, 1)), PutOptions{MaxSize: 999},
			func(err error) bool { return errors.Is(err, ErrTooLarge) }, "ErrTooLarge"},
		{"over size in the first part", bytes.NewReader(pngFile(testPart-1, 2)), PutOptions{MaxSize: 1 << 20},
			func(err error) bool { return errors.Is(err, ErrTooLarge) }, "ErrTooLarge"},
		{"over size mid multipart", bytes.NewReader(pngFile(12<<20, 3)), PutOptions{MaxSize: 7 << 20},
			func(err error) bool { return errors.Is(err, ErrTooLarge) }, "ErrTooLarge"},
		{"over size by one byte at a part boundary", bytes.NewReader(pngFile(2*testPart+1, 4)), PutOptions{MaxSize: 2 * testPart},
			func(err error) bool { return errors.Is(err, ErrTooLarge) }, "ErrTooLarge"},
		{"html labelled png", bytes.NewReader(html), PutOptions{Types: []string{"image/png"}},
			func(err error) bool {
				var te *TypeError
				return errors.As(err, &te) && te.Sniffed == "text/html"
			}, "TypeError text/html"},
		{"big html labelled png", bytes.NewReader(append(html, make([]byte, 12<<20)...)), PutOptions{Types: []string{"image/*"}},
			func(err error) bool {
				var te *TypeError
				return errors.As(err, &te)
			}, "TypeError"},
		{"empty file where images are wanted", bytes.NewReader(nil), PutOptions{Types: []string{"image/png"}},
			func(err error) bool {
				var te *TypeError
				return errors.As(err, &te) && te.Sniffed == "application/octet-stream"
			}, "TypeError application/octet-stream"},
		{"source fails in the first buffer", &failingReader{data: pngFile(100, 5), err: errClientGone}, PutOptions{},
			func(err error) bool {
				var se *SourceError
				return errors.As(err, &se) && errors.Is(err, errClientGone)
			}, "SourceError"},
		{"truncated body is not the end of the file", &failingReader{data: pngFile(100, 6), err: io.ErrUnexpectedEOF}, PutOptions{},
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }, "io.ErrUnexpectedEOF"},
		{"source fails mid multipart", &failingReader{data: pngFile(12<<20, 7), err: errClientGone}, PutOptions{},
			func(err error) bool {
				var se *SourceError
				return errors.As(err, &se) && errors.Is(err, errClientGone)
			}, "SourceError"},
		{"truncated mid multipart", &failingReader{data: pngFile(11<<20, 8), err: io.ErrUnexpectedEOF}, PutOptions{},
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }, "io.ErrUnexpectedEOF"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := fmt.Sprintf("uploads/refuse/%d/", i)
			obj, err := st.Put(ctx, prefix+"f/0", tt.src, tt.opts)
			if !tt.check(err) {
				t.Fatalf("Put = %+v, %v; want %s", obj, err, tt.wantErr)
			}
			assertNothingStored(t, st, prefix)
		})
	}
}

func TestPutCancelledMidMultipartAborts(t *testing.T) {
	st := newTestStore(t, testPart, 4*testPart)
	ctx, cancel := context.WithCancel(context.Background())
	src := &cancelAfter{r: bytes.NewReader(pngFile(20<<20, 9)), after: 8 << 20, cancel: cancel}
	_, err := st.Put(ctx, "uploads/cancel/s/f/0", src, PutOptions{})
	var se *SourceError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a SourceError", err)
	}
	assertNothingStored(t, st, "uploads/cancel/")
}

// cancelAfter cancels a context once n bytes were read, like a request
// whose client went away.
type cancelAfter struct {
	r      io.Reader
	after  int
	read   int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	if c.read >= c.after {
		c.cancel()
		return n, context.Canceled
	}
	return n, err
}

func TestBudgetBoundsConcurrentUploads(t *testing.T) {
	// Two part buffers for the whole store, twelve 12 MiB uploads at once:
	// they take turns, never hold more than the budget, and all finish.
	st := newTestStore(t, testPart, 2*testPart)
	ctx := testenv.Context(t)
	const uploads = 12
	var wg sync.WaitGroup
	errs := make([]error, uploads)
	objs := make([]Object, uploads)
	files := make([][]byte, uploads)
	for i := range uploads {
		files[i] = pngFile(12<<20, uint64(100+i))
	}
	for i := range uploads {
		wg.Go(func() {
			objs[i], errs[i] = st.Put(ctx, fmt.Sprintf("uploads/many/s/f/%d", i), bytes.NewReader(files[i]), PutOptions{})
		})
	}
	wg.Wait()
	for i := range uploads {
		if errs[i] != nil || objs[i].SHA256 != sum(files[i]) {
			t.Errorf("upload %d: %+v, %v", i, objs[i], errs[i])
		}
	}
	if peak := st.buffers.peak.Load(); peak > 2 {
		t.Errorf("peak part buffers in use = %d, budget is 2", peak)
	}
	if n := st.buffers.inUse.Load(); n != 0 {
		t.Errorf("%d part buffers not returned", n)
	}
}

func TestBudgetWaitEndsWithContext(t *testing.T) {
	b := newBudget(1, time.Minute, 0)
	held, err := b.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b.tryGet(context.Background()) != nil {
		t.Fatal("tryGet handed out a buffer over the budget")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a spent budget and an ended context = %v, want context.Canceled", err)
	}
	b.put(held)
	again, err := b.get(context.Background())
	if err != nil || b.inUse.Load() != 1 {
		t.Errorf("a returned lease is not handed out again (err %v, %d in use)", err, b.inUse.Load())
	}
	b.put(again)
}

// TestBudgetAdmission: a wait that runs out is ErrBusy, never a hang; one
// client cannot hold more than its share while others get buffers; a
// waiting upload gets the next buffer given back.
func TestBudgetAdmission(t *testing.T) {
	b := newBudget(3, 50*time.Millisecond, 2)
	a := WithClient(context.Background(), "192.0.2.1")
	other := WithClient(context.Background(), "192.0.2.2")
	a1, err1 := b.get(a)
	a2, err2 := b.get(a)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := b.get(a); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third buffer for a client with a share of 2: %v, want ErrBusy", err)
	}
	if b.tryGet(a) != nil {
		t.Fatal("tryGet went over the client's share")
	}
	o1, err := b.get(other)
	if err != nil {
		t.Fatalf("another client with buffers left: %v", err)
	}
	if _, err := b.get(other); !errors.Is(err, ErrBusy) {
		t.Fatalf("a spent budget: %v, want ErrBusy", err)
	}
	if w := b.waiting.Load(); w != 0 {
		t.Errorf("%d waiting after the waits ended", w)
	}
	got := make(chan error, 1)
	slow := newBudget(3, time.Minute, 2)
	s1, _ := slow.get(a)
	s2, _ := slow.get(a)
	s3, _ := slow.get(other)
	go func() {
		l, err := slow.get(other)
		slow.put(l)
		got <- err
	}()
	for slow.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	slow.put(s1)
	if err := <-got; err != nil {
		t.Fatalf("a waiting upload did not get the buffer given back: %v", err)
	}
	for _, l := range []*lease{a1, a2, o1} {
		b.put(l)
	}
	slow.put(s2)
	slow.put(s3)
	if n := b.inUse.Load() + slow.inUse.Load(); n != 0 || len(b.clients)+len(slow.clients) != 0 {
		t.Errorf("%d buffers and %d client shares left after every put", n, len(b.clients)+len(slow.clients))
	}
}
