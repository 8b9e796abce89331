package formq_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/actions/status"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/golang-jwt/jwt/v5"
)

const tusAdminToken = "tus-admin-token-1234567890"

func startTus(t *testing.T, env map[string]string) *teststack.Stack {
	t.Helper()
	return teststack.Start(t, tusEnv(t, map[string]string{"FORMQ_TUS_TEMP_DIR": t.TempDir()}, env))
}

// tusEnv is the environment of the tus tests' processes: their actions
// file, admin token and auth secret, then each of envs over them.
func tusEnv(t *testing.T, envs ...map[string]string) map[string]string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	e := map[string]string{
		"FORMQ_ACTIONS":           filepath.Join(root, "testdata", "tus.yaml"),
		"FORMQ_ADMIN_TOKEN":       tusAdminToken,
		"FORMQ_AUTH_HS256_SECRET": "tus-tests-hs256-secret-of-32-characters",
	}
	for _, env := range envs {
		for k, v := range env {
			e[k] = v
		}
	}
	return e
}

// pngStream is a file of n bytes that sniffs as image/png: the PNG
// signature, then bytes from a seeded generator, so any offset of it can
// be made again without holding it.
type pngStream struct{ n int64 }

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

func (p pngStream) from(off int64) io.Reader {
	r := io.LimitReader(io.MultiReader(bytes.NewReader(pngSignature), rand.NewChaCha8([32]byte{'t', 'u', 's'})), p.n)
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		panic(err)
	}
	return r
}

func (p pngStream) sha256() string {
	h := sha256.New()
	_, _ = io.Copy(h, p.from(0))
	return hex.EncodeToString(h.Sum(nil))
}

// tusCreate sends a tus creation request and returns the answer.
func tusCreate(t *testing.T, st *teststack.Stack, query string, length int64, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	h := map[string]string{
		"Tus-Resumable": "1.0.0", "Upload-Length": strconv.FormatInt(length, 10), "Accept": "application/json",
		"Upload-Metadata": "filename " + base64.StdEncoding.EncodeToString([]byte("../clip.png")),
	}
	for k, v := range header {
		h[k] = v
	}
	return teststack.Do(t, http.MethodPost, st.APIURL+staging.TusPath+"?"+query, nil, h)
}

func tusOffset(t *testing.T, upload string) int64 {
	t.Helper()
	resp, _ := teststack.Do(t, http.MethodHead, upload, nil, map[string]string{"Tus-Resumable": "1.0.0"})
	off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("HEAD %s: status %d, Upload-Offset %q", upload, resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	return off
}

func tusPatch(t *testing.T, upload string, off int64, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	return teststack.Do(t, http.MethodPatch, upload, body, map[string]string{
		"Tus-Resumable": "1.0.0", "Upload-Offset": strconv.FormatInt(off, 10), "Content-Type": "application/offset+octet-stream",
	})
}

// tusPatchDropped sends a PATCH that promises the rest of the file but
// closes the connection after n bytes of it, as a dropped network does.
func tusPatchDropped(t *testing.T, upload string, off, rest, n int64, body io.Reader) {
	t.Helper()
	u, err := url.Parse(upload)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "PATCH %s HTTP/1.1\r\nHost: %s\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: %d\r\n"+
		"Content-Type: application/offset+octet-stream\r\nContent-Length: %d\r\n\r\n", u.RequestURI(), u.Host, off, rest)
	if _, err := io.CopyN(w, body, n); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

// TestTusUploadResumesAfterDroppedConnections sends a 200MB file over tus,
// drops the connection twice in the middle of a PATCH, resumes each time
// from the offset HEAD answers, and attaches the reference of the
// completed upload to a submission that completes: the stored bytes are
// the file's.
func TestTusUploadResumesAfterDroppedConnections(t *testing.T) {
	st := startTus(t, nil)
	ctx := context.Background()
	file := pngStream{n: 200 << 20}

	resp, raw := tusCreate(t, st, "action=tus-test&field=video", file.n, nil)
	upload := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(upload, st.APIURL+staging.TusPath) {
		t.Fatalf("create: status %d, Location %q, body %s", resp.StatusCode, upload, raw)
	}
	if resp.Header.Get("Upload-Expires") == "" {
		t.Errorf("create answered no Upload-Expires")
	}

	var off int64
	for _, cut := range []int64{70 << 20, 60 << 20} {
		tusPatchDropped(t, upload, off, file.n-off, cut, file.from(off))
		// HEAD waits for the interrupted request to save what it got.
		got := tusOffset(t, upload)
		if got <= off || got > off+cut {
			t.Fatalf("after dropping the connection %d bytes past %d: offset %d", cut, off, got)
		}
		t.Logf("dropped after %d bytes from %d; resumed at %d", cut, off, got)
		off = got
	}
	resp, raw = tusPatch(t, upload, off, file.from(off))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("last PATCH: status %d, body %s", resp.StatusCode, raw)
	}
	var done staging.StagedAnswer
	if err := json.Unmarshal(raw, &done); err != nil || len(done.Uploads) != 1 {
		t.Fatalf("last PATCH answer %s: %v", raw, err)
	}
	up := done.Uploads[0]
	if up.Ref == "" || resp.Header.Get(staging.HeaderUploadRef) != up.Ref || up.Size != file.n || up.ContentType != "image/png" || up.Filename != "clip.png" || up.Field != "video" {
		t.Fatalf("completed upload %+v, header ref %q", up, resp.Header.Get(staging.HeaderUploadRef))
	}
	if got := tusOffset(t, upload); got != file.n {
		t.Errorf("offset after completion %d, want %d", got, file.n)
	}

	want := file.sha256()
	resp, raw = teststack.Post(t, st.APIURL+"/actions/tus-test", strings.NewReader(url.Values{"name": {"Ada"}, "video": {up.Ref}}.Encode()),
		"application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
	var accepted struct {
		Submission struct {
			ID string `json:"id"`
		} `json:"submission"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &accepted) != nil || accepted.Submission.ID == "" {
		t.Fatalf("submit with the reference: status %d, body %.500s", resp.StatusCode, raw)
	}
	id := accepted.Submission.ID
	var final *submission.Status
	teststack.WaitFor(t, 2*time.Minute, "submission "+id+" to finish", func() bool {
		resp, raw := teststack.Do(t, http.MethodGet, st.APIURL+"/submissions/"+id, nil, map[string]string{"Authorization": "Bearer " + tusAdminToken})
		var ans status.StatusAnswer
		if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &ans) != nil || ans.Submission == nil {
			return false
		}
		final = ans.Submission
		return final.Done()
	})
	if final.Status != submission.StatusCompleted || len(final.Files) != 1 {
		t.Fatalf("submission %+v", final)
	}
	f := final.Files[0]
	if f.Key != submission.UploadKey("tus-test", id, "video", 0) || f.Size != file.n || f.ContentType != "image/png" || f.Filename != "clip.png" {
		t.Errorf("attached file %+v", f)
	}
	if got := storedSHA256(t, st.Store, f.Key); got != want {
		t.Errorf("stored file sha256 %s, want %s", got, want)
	}
	// The tus object and tusd's .info went with the submission.
	left, err := st.Store.List(ctx, submission.TusPrefix)
	if err != nil || len(left) != 0 {
		t.Errorf("left under %s: %v (err %v)", submission.TusPrefix, left, err)
	}
}

func storedSHA256(t *testing.T, store *uploads.Store, key string) string {
	t.Helper()
	body, _, err := store.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestTusCreationRefusals: tus creation takes the limits, auth and scope
// of POST /uploads, answered in the contract's JSON before tusd stores
// anything.
func TestTusCreationRefusals(t *testing.T) {
	st := startTus(t, nil)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte("tus-tests-hs256-secret-of-32-characters"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query string
		length      int64
		header      map[string]string
		status      int
		code        string
	}{
		{"over the field's max_size", "action=tus-test&field=video", 300<<20 + 1, nil, http.StatusRequestEntityTooLarge, "payload_too_large"},
		{"over the profile's max_size", "profile=clips", 1<<20 + 1, nil, http.StatusRequestEntityTooLarge, "payload_too_large"},
		{"auth: required without a token", "action=tus-auth&field=video", 10, nil, http.StatusUnauthorized, "unauthenticated"},
		{"a field not marked resumable", "action=tus-test&field=doc", 10, nil, http.StatusNotFound, "not_found"},
		{"a profile not marked resumable", "profile=plain", 10, nil, http.StatusNotFound, "not_found"},
		{"no scope", "", 10, nil, http.StatusBadRequest, "bad_request"},
		{"deferred length", "profile=clips", 10, map[string]string{"Upload-Length": "", "Upload-Defer-Length": "1"}, http.StatusBadRequest, "bad_request"},
		{"cross-site origin", "profile=clips", 10, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, "forbidden_origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, raw := tusCreate(t, st, tt.query, tt.length, tt.header)
			var body web.ErrorBody
			if resp.StatusCode != tt.status || json.Unmarshal(raw, &body) != nil || body.Error.Code != tt.code || resp.Header.Get("Location") != "" {
				t.Errorf("status %d, Location %q, body %s; want %d %s", resp.StatusCode, resp.Header.Get("Location"), raw, tt.status, tt.code)
			}
		})
	}
	if keys, _ := st.Store.List(context.Background(), submission.TusPrefix); len(keys) != 0 {
		t.Errorf("refused creations stored %v", keys)
	}

	// With a token the auth: required field takes the upload.
	resp, raw := tusCreate(t, st, "action=tus-auth&field=video", 5, map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") == "" {
		t.Fatalf("with a token: status %d, body %s", resp.StatusCode, raw)
	}
	resp, raw = tusPatch(t, resp.Header.Get("Location"), 0, strings.NewReader("hello"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get(staging.HeaderUploadRef) == "" {
		t.Errorf("completing it: status %d, body %s", resp.StatusCode, raw)
	}
}

// TestTusWrongTypeRefusedOnCompletion: the type is sniffed from the
// stored object once the last byte is in; a file of another type is
// answered 422 with the field's message and deleted.
func TestTusWrongTypeRefusedOnCompletion(t *testing.T) {
	st := startTus(t, nil)
	html := []byte("<!DOCTYPE html><html><body>not a picture</body></html>")
	resp, raw := tusCreate(t, st, "profile=clips", int64(len(html)), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	upload := resp.Header.Get("Location")
	resp, raw = tusPatch(t, upload, 0, bytes.NewReader(html))
	var body web.ErrorBody
	if resp.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(raw, &body) != nil || body.Error.Code != "validation_failed" ||
		!strings.Contains(strings.Join(body.Errors["file"], " "), "text/html") || resp.Header.Get(staging.HeaderUploadRef) != "" {
		t.Fatalf("completing an HTML file as a PNG: status %d, body %s", resp.StatusCode, raw)
	}
	if keys, _ := st.Store.List(context.Background(), submission.TusPrefix); len(keys) != 0 {
		t.Errorf("the refused upload left %v", keys)
	}
	if resp, _ := teststack.Do(t, http.MethodHead, upload, nil, map[string]string{"Tus-Resumable": "1.0.0"}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of the refused upload: %d, want 404", resp.StatusCode)
	}
}

// TestJanitorRemovesExpiredTusUploads: an unfinished resumable upload past
// FORMQ_TUS_EXPIRY loses its multipart upload and tusd's .info and .part
// objects to the janitor; a younger one and a completed one stay, and the
// API refuses to resume an expired one.
func TestJanitorRemovesExpiredTusUploads(t *testing.T) {
	st := startTus(t, map[string]string{"FORMQ_TUS_EXPIRY": "1h"})
	ctx := context.Background()
	// Unfinished: 6MB of 8MB sent, so S3 holds a part and tusd a .part.
	unfinished := pngStream{n: 8 << 20}
	resp, raw := tusCreate(t, st, "action=tus-test&field=video", unfinished.n, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	upload := resp.Header.Get("Location")
	tusPatchDropped(t, upload, 0, unfinished.n, 6<<20, unfinished.from(0))
	if off := tusOffset(t, upload); off == 0 {
		t.Fatalf("nothing stored of the unfinished upload")
	}
	// Completed.
	resp, _ = tusCreate(t, st, "profile=clips", 100, nil)
	if resp, raw := tusPatch(t, resp.Header.Get("Location"), 0, pngStream{n: 100}.from(0)); resp.StatusCode != http.StatusOK {
		t.Fatalf("completing: %d %s", resp.StatusCode, raw)
	}
	before, _ := st.Store.List(ctx, submission.TusPrefix)
	ups, _ := st.Store.MultipartUploads(ctx, submission.TusPrefix)
	if len(ups) != 1 || len(before) < 3 {
		t.Fatalf("before the sweep: objects %v, %d multipart uploads", before, len(ups))
	}

	cfg := uploads.JanitorConfig{
		MinAge: 24 * time.Hour, StagedAge: 25 * time.Hour, TusExpiry: time.Hour,
		Keep: func(context.Context, string, string) (bool, error) { return true, nil },
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if s, err := uploads.NewJanitor(st.Store, cfg).Sweep(ctx); err != nil || s.Deleted+s.Aborted != 0 {
		t.Fatalf("sweep within the expiry: %+v, %v; want nothing removed", s, err)
	}
	cfg.Now = func() time.Time { return time.Now().Add(time.Hour + uploads.ClockAllowance + time.Minute) } // past the expiry and the allowance for the API's clock
	s, err := uploads.NewJanitor(st.Store, cfg).Sweep(ctx)
	if err != nil || s.Aborted != 1 {
		t.Fatalf("sweep past the expiry: %+v, %v", s, err)
	}
	after, _ := st.Store.List(ctx, submission.TusPrefix)
	ups, _ = st.Store.MultipartUploads(ctx, submission.TusPrefix)
	unfinishedID, _, _ := strings.Cut(upload[strings.LastIndex(upload, "/")+1:], "+")
	for _, k := range after {
		if strings.HasPrefix(k, submission.TusKey(unfinishedID)) {
			t.Errorf("the expired upload's %s is left", k)
		}
	}
	if len(ups) != 0 || len(after) != 2 { // the completed upload and its .info
		t.Errorf("after the sweep: objects %v (before %v), %d multipart uploads", after, before, len(ups))
	}
	// Long past expiry and the references' lifetime, the completed one goes too.
	cfg.Now = func() time.Time { return time.Now().Add(27 * time.Hour) }
	if _, err := uploads.NewJanitor(st.Store, cfg).Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := st.Store.List(ctx, submission.TusPrefix); len(left) != 0 {
		t.Errorf("after every lifetime: %v", left)
	}
}
