package submit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
)

// memFiles is an in-memory FileStore for the fuzz target, which must run
// thousands of requests a second; the S3 path has its own tests.
type memFiles struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (m *memFiles) Put(ctx context.Context, key string, src io.Reader, o uploads.PutOptions) (uploads.Object, error) {
	r := src
	if o.MaxSize > 0 {
		r = io.LimitReader(src, o.MaxSize+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return uploads.Object{}, &uploads.SourceError{Err: err}
	}
	if o.MaxSize > 0 && int64(len(b)) > o.MaxSize {
		return uploads.Object{}, uploads.ErrTooLarge
	}
	ct := uploads.Sniff(b)
	if !uploads.TypeAllowed(ct, o.Types) {
		return uploads.Object{}, &uploads.TypeError{Sniffed: ct}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = b
	return uploads.Object{Key: key, Size: int64(len(b)), ContentType: ct, Filename: o.Filename}, nil
}

func (m *memFiles) Delete(ctx context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.objs, k)
	}
	return nil
}

type memQueue struct {
	mu   sync.Mutex
	subs []*submission.Submission
}

func (q *memQueue) Enqueue(ctx context.Context, s *submission.Submission) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.subs = append(q.subs, s)
	return nil
}

// FuzzSubmit feeds arbitrary bodies and content types to the decoding
// path of POST /actions/{name}: it must never panic, must answer one of
// the contract's statuses with its JSON shape, and must keep files and
// jobs only for an accepted submission.
func FuzzSubmit(f *testing.F) {
	list, err := actions.LoadFile("../testdata/actions.yaml")
	if err != nil {
		f.Fatal(err)
	}
	sealer, _ := seal.New("fuzz-secret-that-is-at-least-32-characters")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := actions.NewRegistry(list...)
	pg, err := pages.New(pages.Config{}, pages.Deps{Actions: reg, Sealer: sealer, Log: log})
	if err != nil {
		f.Fatal(err)
	}

	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	f.Add("create-user", "application/x-www-form-urlencoded", []byte("name=Ada&email=a%40example.com"))
	f.Add("create-user", "multipart/form-data; boundary=B", []byte("--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n--B\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@example.com\r\n--B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"a.png\"\r\n\r\n"+string(png)+"\r\n--B--\r\n"))
	f.Add("signup", "application/x-www-form-urlencoded", []byte("name=A&age=x&tags=a&tags=z&agree=on&birthday=2026-02-30&score=NaN"))
	f.Add("update-user", "application/x-www-form-urlencoded", []byte("name=x&_bound=AAAA"))
	f.Add("create-user", "multipart/form-data; boundary=B", []byte("--B\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"..\\\\..\\\\evil\x00\"\r\n\r\n<html>\r\n--B"))
	f.Add("tiny", "application/x-www-form-urlencoded", bytes.Repeat([]byte("a"), 2000))

	f.Fuzz(func(t *testing.T, action, contentType string, body []byte) {
		files := &memFiles{objs: map[string][]byte{}}
		queue := &memQueue{}
		e := echo.New()
		e.HTTPErrorHandler = web.ErrorHandler(log, pg)
		h, err := New(Config{}, Deps{Actions: reg, Files: files, Queue: queue, Log: log, Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		e.POST("/actions/:name", h.Submit)
		req := httptest.NewRequest(http.MethodPost, "/actions/create-user", bytes.NewReader(body))
		if action != "" && len(action) < 40 && echoSafe(action) {
			req = httptest.NewRequest(http.MethodPost, "/actions/"+action, bytes.NewReader(body))
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)

		var answer struct {
			OK    *bool `json:"ok"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer.OK == nil {
			t.Fatalf("status %d: not the contract's JSON: %q", rec.Code, rec.Body.String())
		}
		switch rec.Code {
		case http.StatusAccepted:
			if len(queue.subs) != 1 || len(files.objs) != len(queue.subs[0].Files) {
				t.Fatalf("accepted with %d jobs and %d files for %d declared", len(queue.subs), len(files.objs), len(queue.subs))
			}
		case 400, 401, 403, 404, 413, 415, 422, 429:
			if answer.Error == nil || answer.Error.Code == "" {
				t.Fatalf("status %d without an error code: %s", rec.Code, rec.Body.String())
			}
			if len(files.objs) != 0 || len(queue.subs) != 0 {
				t.Fatalf("refused (%d) but kept %d files and %d jobs", rec.Code, len(files.objs), len(queue.subs))
			}
		default:
			t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body.String())
		}
	})
}

func echoSafe(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
