package conformance_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/conformance"
	"github.com/formq/formq/internal/teststack"
)

// tusRun is one scenario of tus.mjs: tus-js-client against a stack.
type tusRun struct {
	Scenario  string `json:"scenario"`
	Endpoint  string `json:"endpoint"`
	Size      int    `json:"size"`
	ChunkSize int    `json:"chunkSize"`
	UploadURL string `json:"uploadUrl,omitempty"`
}

// tusHead is tus.mjs's view of a HEAD.
type tusHead struct {
	Status int   `json:"status"`
	Offset int64 `json:"offset"`
}

// tusOutcome is what tus.mjs printed, for every scenario.
type tusOutcome struct {
	FirstURL    string  `json:"firstUrl"`
	SecondURL   string  `json:"secondUrl"`
	URL         string  `json:"url"`
	Acked       int64   `json:"acked"`
	Stored      tusHead `json:"stored"`
	Final       tusHead `json:"final"`
	After       tusHead `json:"after"`
	Ref         string  `json:"ref"`
	Error       string  `json:"error"`
	Status      int     `json:"status"`
	ContentType string  `json:"contentType"`
	Body        string  `json:"body"`
}

// S3 parts are at least 5 MiB: chunks of 5 MiB store whole parts, so an
// interrupted upload keeps them.
const (
	tusChunk = 5 << 20
	tusSize  = 12 << 20
)

func runTus(t *testing.T, tl *conformance.Tools, in tusRun) tusOutcome {
	t.Helper()
	stdin, _ := json.Marshal(in)
	res := tl.Run(t, "", stdin, "tus.mjs")
	if res.Err != nil {
		t.Fatalf("tus-js-client, %s: %v\n%s", in.Scenario, res.Err, res)
	}
	var out tusOutcome
	if err := json.Unmarshal(res.Stdout, &out); err != nil {
		t.Fatalf("tus.mjs printed %q: %v", res.Stdout, err)
	}
	return out
}

func startTusStack(t *testing.T, env map[string]string) *teststack.Stack {
	t.Helper()
	tlRoot := filepath.Dir(filepath.Dir(conformanceDir(t)))
	e := map[string]string{
		"FORMQ_ACTIONS":      filepath.Join(tlRoot, "testdata", "tus.yaml"),
		"FORMQ_TUS_TEMP_DIR": t.TempDir(),
		// tus.yaml's tus-auth action needs a key to start.
		"FORMQ_AUTH_HS256_SECRET": "tus-conformance-hs256-secret-of-32-characters",
	}
	for k, v := range env {
		e[k] = v
	}
	return teststack.Start(t, e)
}

func conformanceDir(t *testing.T) string {
	t.Helper()
	return conformance.Install(t).Dir
}

// TestTusJSClientResumes: tus-js-client discovers the server (OPTIONS),
// uploads, is interrupted after its first chunk, and a new Upload resumes
// from the upload URL at the stored offset (not from zero) to a sealed
// reference; a refused creation reaches its onError as the contract's
// JSON; abort(true) cancels (tus termination), after which HEAD is 404;
// an upload attached to a submission answers HEAD 404 and tus-js-client
// starts a new one from its URL.
func TestTusJSClientResumes(t *testing.T) {
	tl := conformance.Install(t)
	st := startTusStack(t, nil)
	endpoint := st.APIURL + "/uploads/tus/"

	resp, _ := teststack.Do(t, http.MethodOptions, endpoint, nil, nil)
	maxSize, err := strconv.ParseInt(resp.Header.Get("Tus-Max-Size"), 10, 64)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Tus-Version") != "1.0.0" || err != nil || maxSize != 300<<20 ||
		!strings.Contains(resp.Header.Get("Tus-Extension"), "creation") || !strings.Contains(resp.Header.Get("Tus-Extension"), "termination") {
		t.Errorf("OPTIONS %s: %d, Tus-Version %q, Tus-Extension %q, Tus-Max-Size %q (want 1.0.0, creation and termination, %d)", endpoint, resp.StatusCode,
			resp.Header.Get("Tus-Version"), resp.Header.Get("Tus-Extension"), resp.Header.Get("Tus-Max-Size"), 300<<20)
	}

	out := runTus(t, tl, tusRun{Scenario: "resume", Endpoint: endpoint + "?action=tus-test&field=video", Size: tusSize, ChunkSize: tusChunk})
	t.Logf("tus-js-client: stopped after %d bytes acknowledged; HEAD said %d stored; resumed at %s; HEAD at the end %+v", out.Acked, out.Stored.Offset, out.SecondURL, out.Final)
	if out.Stored.Status != http.StatusOK || out.Stored.Offset < tusChunk || out.Stored.Offset >= tusSize {
		t.Errorf("after the interruption: HEAD %+v, want 200 with %d to %d bytes stored", out.Stored, tusChunk, tusSize)
	}
	if out.SecondURL != out.FirstURL {
		t.Errorf("the second Upload went to %s, not the interrupted %s: it started over", out.SecondURL, out.FirstURL)
	}
	if out.Ref == "" || out.Final.Status != http.StatusOK || out.Final.Offset != tusSize {
		t.Errorf("resumed upload: reference %q, HEAD %+v; want a reference and all %d bytes", out.Ref, out.Final, tusSize)
	}

	// Attached to a submission, the upload is gone: HEAD answers 404 and
	// tus-js-client, given its URL again, starts a new upload.
	resp, raw := teststack.Post(t, st.APIURL+"/actions/tus-test", strings.NewReader(url.Values{"name": {"Ada"}, "video": {out.Ref}}.Encode()),
		"application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit with the reference: %d %.300s", resp.StatusCode, raw)
	}
	teststack.WaitFor(t, time.Minute, "the used upload to answer HEAD 404", func() bool {
		resp, _ := teststack.Do(t, http.MethodHead, out.SecondURL, nil, map[string]string{"Tus-Resumable": "1.0.0"})
		return resp.StatusCode == http.StatusNotFound
	})
	again := runTus(t, tl, tusRun{Scenario: "restart", Endpoint: endpoint + "?action=tus-test&field=video", Size: tusSize, ChunkSize: tusChunk, UploadURL: out.SecondURL})
	if again.Ref == "" || again.URL == out.SecondURL {
		t.Errorf("from a used upload's URL: upload %s, reference %q; want a new upload with a reference", again.URL, again.Ref)
	}

	refused := runTus(t, tl, tusRun{Scenario: "refused", Endpoint: endpoint + "?profile=plain", Size: 1 << 10, ChunkSize: tusChunk})
	var body struct {
		OK    *bool `json:"ok"`
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if refused.Status != http.StatusNotFound || !strings.HasPrefix(refused.ContentType, "application/json") ||
		json.Unmarshal([]byte(refused.Body), &body) != nil || body.OK == nil || *body.OK || body.Error.Code != "not_found" {
		t.Errorf("a creation in a scope without resumable uploads reached onError as %d %q: %.300s", refused.Status, refused.ContentType, refused.Body)
	}

	cancelled := runTus(t, tl, tusRun{Scenario: "cancel", Endpoint: endpoint + "?action=tus-test&field=video", Size: tusSize, ChunkSize: tusChunk})
	if cancelled.After.Status != http.StatusNotFound {
		t.Errorf("HEAD after tus-js-client's abort(true): %+v, want 404", cancelled.After)
	}
}

// TestTusJSClientRestartsExpiredUpload: an upload URL past
// FORMQ_TUS_EXPIRY answers HEAD 410, so tus-js-client, given that URL and
// the endpoint, creates a new upload and finishes it instead of failing on
// PATCH.
func TestTusJSClientRestartsExpiredUpload(t *testing.T) {
	tl := conformance.Install(t)
	// Long enough that the interrupted run and its HEAD finish before it
	// under load (3 s ran out first on a loaded machine: HEAD answered 410).
	const expiry = 8 * time.Second
	st := startTusStack(t, map[string]string{"FORMQ_TUS_EXPIRY": expiry.String()})
	endpoint := st.APIURL + "/uploads/tus/?action=tus-test&field=video"

	stopped := runTus(t, tl, tusRun{Scenario: "stop", Endpoint: endpoint, Size: tusSize, ChunkSize: tusChunk})
	if stopped.Stored.Status != http.StatusOK || stopped.Stored.Offset < tusChunk {
		t.Fatalf("the interrupted upload: HEAD %+v", stopped.Stored)
	}
	head := func() *http.Response {
		resp, _ := teststack.Do(t, http.MethodHead, stopped.URL, nil, map[string]string{"Tus-Resumable": "1.0.0"})
		return resp
	}
	expires, err := http.ParseTime(head().Header.Get("Upload-Expires"))
	if err != nil {
		t.Fatalf("the interrupted upload's Upload-Expires: %v", err)
	}
	time.Sleep(time.Until(expires.Add(time.Second))) // the header is to the second
	if resp := head(); resp.StatusCode != http.StatusGone {
		t.Errorf("HEAD of the expired upload: %d, want 410", resp.StatusCode)
	}
	out := runTus(t, tl, tusRun{Scenario: "restart", Endpoint: endpoint, Size: tusSize, ChunkSize: tusChunk, UploadURL: stopped.URL})
	if out.Ref == "" || out.URL == stopped.URL || out.URL == "" {
		t.Errorf("after expiry: upload %s, reference %q; want a new upload (not %s) with a reference", out.URL, out.Ref, stopped.URL)
	}
}
