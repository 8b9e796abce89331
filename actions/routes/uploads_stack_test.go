package routes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/actions/submit"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/redisstate"
	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
)

// upStack is an API over real HTTP, wired to a real Store on versitygw and
// a real queue on Redis, that counts the body bytes the server read.
type upStack struct {
	url   string
	store *uploads.Store
	read  atomic.Int64 // request body bytes the server read, all requests
	done  atomic.Int64 // requests the server has finished with
}

const testIdle = time.Second

func startUploads(t *testing.T) *upStack {
	t.Helper()
	ctx := context.Background()
	r := testenv.StartRedis(t)
	s := testenv.StartS3(t)
	store, err := uploads.NewStore(ctx, uploads.Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
		PartSize: 5 << 20, Memory: 20 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	decl, err := actions.Load("../testdata/uploads.yaml", actions.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New("upload-tests-secret-of-at-least-32-chars")
	if err != nil {
		t.Fatal(err)
	}
	rdb := r.Client(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := actions.NewRegistry(decl.Actions...)
	pg, err := pages.New(pages.Config{}, pages.Deps{Actions: reg, Sealer: sealer, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h, err := submit.New(submit.Config{ReaderLimits: uploads.DefaultReaderLimits, ReadIdle: testIdle, Profiles: decl.Profiles}, submit.Deps{
		Actions: reg, Files: store, Objects: store, Log: log, Sealer: sealer,
		Queue:  jobs.NewEnqueuer(asynq.NewClientFromRedisClient(rdb), jobs.NewStatusStore(rdb), log),
		Memory: submit.Memory{Claims: redisstate.NewRefClaims(rdb)},
	})
	if err != nil {
		t.Fatal(err)
	}
	up, err := staging.New(staging.Config{Profiles: decl.Profiles, ReaderLimits: uploads.DefaultReaderLimits, ReadIdle: testIdle}, reg, store, sealer, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	st := &upStack{store: store}
	e := echo.New()
	e.HTTPErrorHandler = web.ErrorHandler(log, pg)
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Request().Body = &countingBody{ReadCloser: c.Request().Body, n: &st.read}
			defer st.done.Add(1)
			return next(c)
		}
	})
	e.POST("/actions/:name", h.Submit)
	e.POST("/uploads", up.Upload)
	e.POST("/uploads/presign", up.Presign)
	srv := httptest.NewUnstartedServer(e)
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	st.url = srv.URL
	return st
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// stored lists what the bucket holds under uploads/: objects and
// unfinished multipart uploads.
func (st *upStack) stored(t *testing.T) (keys []string, unfinished int) {
	t.Helper()
	keys, err := st.store.List(context.Background(), "uploads/")
	if err != nil {
		t.Fatal(err)
	}
	ups, err := st.store.MultipartUploads(context.Background(), "uploads/")
	if err != nil {
		t.Fatal(err)
	}
	return keys, len(ups)
}

// assertOnlyKept checks that a refused submission left nothing but the
// staged copies of the files it answered as kept, then removes those.
func (st *upStack) assertOnlyKept(t *testing.T, kept map[string][]web.KeptFile) {
	t.Helper()
	keys, n := st.stored(t)
	var staged []string
	for _, k := range keys {
		if strings.HasPrefix(k, submission.StagedPrefix) {
			staged = append(staged, k)
		}
	}
	want := 0
	for _, list := range kept {
		want += len(list)
	}
	if len(staged) != len(keys) || n != 0 || len(staged) != want {
		t.Errorf("left behind: objects %v, %d unfinished multipart uploads; %d files answered as kept", keys, n, want)
	}
	if len(staged) > 0 {
		if err := st.store.Delete(context.Background(), staged...); err != nil {
			t.Fatal(err)
		}
	}
}

// assertEmpty fails when anything is left in the bucket: an object or an
// unfinished multipart upload. It waits up to 5 s for the bucket to empty: the S3 server may store a
// cut PUT's partial object after the delete that follows the cut, and
// formq deletes it again 2 s later. Nothing else here removes anything
// (no janitor runs), so what is left after that stays.
func (st *upStack) assertEmpty(t *testing.T) {
	t.Helper()
	keys, n := st.stored(t)
	for end := time.Now().Add(5 * time.Second); (len(keys) != 0 || n != 0) && time.Now().Before(end); keys, n = st.stored(t) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(keys) != 0 || n != 0 {
		t.Errorf("left behind: objects %v, %d unfinished multipart uploads", keys, n)
	}
}

// part is one part of a test body: a value, or a file when filename is set.
type part struct {
	field, filename, value string
	data                   []byte
	src                    io.Reader // streamed file content, instead of data
}

// form streams parts as a multipart body through a pipe, so large bodies
// are never in memory.
func form(parts ...part) (io.Reader, string) {
	pr, pw := io.Pipe()
	w := multipart.NewWriter(pw)
	go func() {
		for _, p := range parts {
			if p.filename == "" && p.data == nil && p.src == nil {
				if err := w.WriteField(p.field, p.value); err != nil {
					pw.CloseWithError(err)
					return
				}
				continue
			}
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.field, p.filename))
			h.Set("Content-Type", "image/png") // claimed, never believed
			fw, err := w.CreatePart(h)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			src := p.src
			if src == nil {
				src = bytes.NewReader(p.data)
			}
			if _, err := io.Copy(fw, src); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(w.Close())
	}()
	return pr, w.FormDataContentType()
}

// answer is the JSON of any answer.
type answer struct {
	OK    bool `json:"ok"`
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
	Errors     map[string][]string `json:"errors"`
	Values     map[string]any      `json:"values"`
	Submission struct {
		ID    string            `json:"id"`
		Files []submission.File `json:"files"`
	} `json:"submission"`
	Uploads []staging.StagedUpload    `json:"uploads"`
	Kept    map[string][]web.KeptFile `json:"kept"`
}

// post sends a body (chunked when size is unknown) and decodes the answer.
func post(t *testing.T, url string, body io.Reader, ctype string) (*http.Response, answer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("status %d, body %q is not JSON: %v", resp.StatusCode, raw, err)
	}
	return resp, a
}

// pngOf is n bytes that sniff as PNG.
func pngOf(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(b)
	copy(b, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	return b
}

// zeros streams n zero bytes.
func zeros(n int64) io.Reader { return io.LimitReader(zeroReader{}, n) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
