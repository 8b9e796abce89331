package uploads

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/formq/formq/internal/testenv"
)

// declaredPart is a file part with its own Content-Length header.
func declaredPart(t *testing.T, data []byte, declared int) *Part {
	t.Helper()
	body := fmt.Sprintf("--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.png\"\r\nContent-Length: %d\r\n\r\n%s\r\n--B--\r\n", declared, data)
	mr, err := NewMultipartReader(bytes.NewReader([]byte(body)), "multipart/form-data; boundary=B", DefaultReaderLimits)
	if err != nil {
		t.Fatal(err)
	}
	p, err := mr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if p.Size != int64(declared) {
		t.Fatalf("part size %d, want %d", p.Size, declared)
	}
	return p
}

func TestPutDeclaredSizeStreamsOnePutObject(t *testing.T) {
	st := newTestStore(t, testPart, 4*testPart)
	ctx := testenv.Context(t)
	data := pngFile(12<<20, 77)
	obj, err := st.Put(ctx, "uploads/d/s/f/0", declaredPart(t, data, len(data)), PutOptions{MaxSize: 20 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(len(data)) || obj.SHA256 != sum(data) || obj.ContentType != "image/png" {
		t.Errorf("Put = %+v", obj)
	}
	if peak := st.buffers.peak.Load(); peak != 0 {
		t.Errorf("a file of declared size took %d part buffers; it streams without them", peak)
	}
	if got, err := st.Get(ctx, obj.Key); err != nil || !bytes.Equal(got, data) {
		t.Errorf("stored bytes differ (err %v)", err)
	}
	if head, err := st.Head(ctx, obj.Key); err != nil || head.SHA256 != sum(data) {
		t.Errorf("Head = %+v, %v", head, err)
	}
}

func TestPutDeclaredSizeMustHold(t *testing.T) {
	st := newTestStore(t, testPart, 4*testPart)
	ctx := testenv.Context(t)
	data := pngFile(7<<20, 78)
	tests := []struct {
		name     string
		declared int
		maxSize  int64
		want     error
	}{
		{"declared over max_size is refused before reading", len(data), 1 << 20, ErrTooLarge},
		{"content longer than declared", len(data) - 1000, 0, ErrSizeMismatch},
		{"content shorter than declared", len(data) + 1000, 0, ErrSizeMismatch},
		{"small content, wrong size", 10, 0, ErrSizeMismatch},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := fmt.Sprintf("uploads/mismatch/%d/", i)
			p := declaredPart(t, data, tt.declared)
			_, err := st.Put(ctx, prefix+"f/0", p, PutOptions{MaxSize: tt.maxSize})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			_, _ = io.Copy(io.Discard, p)
			assertNothingStored(t, st, prefix)
		})
	}
}
