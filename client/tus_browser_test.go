package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

// tusSite is formq behind a proxy that reads resumable-upload bodies
// slowly and writes down every tus request, and a page with a resumable
// upload field on another origin.
type tusSite struct {
	stack *teststack.Stack
	api   string
	page  string
	mu    sync.Mutex
	seen  []string     // "POST", "HEAD", "PATCH {offset}" in order
	patch atomic.Int64 // PATCH body bytes read so far
}

func (s *tusSite) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func startTusSite(t *testing.T) *tusSite {
	t.Helper()
	s := &tusSite{}
	pageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, pageHead, "Send a clip")
		fmt.Fprintf(w, `<script type="module" src="%[1]s/formq.js"></script>
<form data-formq data-formq-success="message" method="post" enctype="multipart/form-data" action="%[1]s/actions/clip">
<label for="name">Name</label><input id="name" name="name">
<label for="video">Clip</label><input id="video" name="video" type="file">
<progress data-formq-progress="video" max="1" value="0" aria-label="Upload progress"></progress>
<button>Send</button>
<p data-formq-message></p>
</form></main></body></html>`, s.api)
	}))
	t.Cleanup(pageSrv.Close)
	s.page = pageSrv.URL
	actions := writeFile(t, "tus-actions.yaml", []byte(`actions:
  clip:
    fields:
      name: {type: text, required: true}
    uploads:
      video: {max_size: 64MB, types: [image/png], required: true, resumable: true}
`))
	s.stack = teststack.Start(t, map[string]string{
		"FORMQ_ACTIONS": actions, "FORMQ_ALLOWED_ORIGINS": s.page, "FORMQ_ADMIN_TOKEN": testAdminToken, "FORMQ_TUS_TEMP_DIR": t.TempDir(),
	})
	target, _ := url.Parse(s.stack.APIURL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var proxyURL string
	proxy.ModifyResponse = func(resp *http.Response) error {
		// The API names its own address; the page must come back here.
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, s.stack.APIURL) {
			resp.Header.Set("Location", proxyURL+strings.TrimPrefix(loc, s.stack.APIURL))
		}
		return nil
	}
	proxySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/uploads/tus/") && r.Method != http.MethodOptions {
			what := r.Method
			if r.Method == http.MethodPatch {
				what += " " + r.Header.Get("Upload-Offset")
				r.Body = &counted{r: r.Body, n: &s.patch, slow: true, chunk: 64 << 10, pause: 10 * time.Millisecond}
			}
			s.mu.Lock()
			s.seen = append(s.seen, what)
			s.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(proxySrv.Close)
	s.api, proxyURL = proxySrv.URL, proxySrv.URL
	return s
}

// slowBody reads 64 KiB at a time, 10ms apart (about 6 MB/s): a link
// slow enough to reload the page in the middle of the upload.

// TestClientResumesTusUploadAfterReload: client.js sends a resumable
// field's file over tus; the page is reloaded in the middle of it; after
// the file is chosen again, client.js asks the stored upload URL for its
// offset (HEAD) and sends the rest from there (PATCH at a non-zero
// offset), not from the start, and the form is accepted with the
// reference.
func TestClientResumesTusUploadAfterReload(t *testing.T) {
	s := startTusSite(t)
	ctx := tab(t)
	const size = 24 << 20
	file := pngFile(t, "clip.png", size)

	run(t, ctx, chromedp.Navigate(s.page), chromedp.WaitVisible(chromedp.CSS("#name")))
	waitJS(t, ctx, "formq.js to fetch the schema", `performance.getEntriesByType("resource").some((e) => e.name.endsWith("/actions/clip/schema"))`)
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#name"), "Ada"),
		chromedp.SetUploadFiles(chromedp.CSS("#video"), []string{file}), chromedp.Click(chromedp.CSS("button")))
	teststack.WaitFor(t, 60*time.Second, "4MB of the upload to reach the server", func() bool { return s.patch.Load() >= 4<<20 })
	waitJS(t, ctx, "the progress bar to move", `document.querySelector("progress").value > 0`)
	stored := evalString(t, ctx, `Object.keys(localStorage).filter((k) => k.startsWith("formq:tus:")).map((k) => localStorage.getItem(k)).join()`)
	if !strings.Contains(stored, "/uploads/tus/") {
		t.Fatalf("localStorage holds no upload URL: %q", stored)
	}
	run(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#name")))
	sentBefore := s.patch.Load()
	if sentBefore >= size {
		t.Fatalf("the whole file (%d bytes) went before the reload", sentBefore)
	}

	// The same file again: client.js resumes the stored upload.
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#name"), "Ada"),
		chromedp.SetUploadFiles(chromedp.CSS("#video"), []string{file}), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the form to be accepted", `document.querySelector("[data-formq-message]").textContent.length > 0`)
	if msg := evalString(t, ctx, `document.querySelector("[data-formq-message]").textContent`); !strings.Contains(msg, "Thank") {
		t.Fatalf("message %q", msg)
	}

	seen := s.requests()
	creations, heads, resumedAt := 0, 0, int64(0)
	for _, r := range seen {
		switch {
		case r == "POST":
			creations++
		case r == "HEAD":
			heads++
		case strings.HasPrefix(r, "PATCH "):
			if off, _ := strconv.ParseInt(strings.TrimPrefix(r, "PATCH "), 10, 64); off > 0 && resumedAt == 0 {
				resumedAt = off
			}
		}
	}
	if creations != 1 || heads == 0 || resumedAt == 0 {
		t.Fatalf("tus requests %v: want one creation, a HEAD and a PATCH at a non-zero offset", seen)
	}
	t.Logf("tus requests %v; %d bytes sent before the reload, resumed at %d", seen, sentBefore, resumedAt)
	if total := s.patch.Load(); total >= 2*size {
		t.Errorf("%d PATCH bytes for a %d-byte file: it started over", total, size)
	}

	// The submission holds the whole file.
	var keys []string
	teststack.WaitFor(t, 30*time.Second, "the submission's file", func() bool {
		keys, _ = s.stack.Store.List(context.Background(), submission.UploadsPrefix+"clip/")
		return len(keys) == 1
	})
	body, n, err := s.stack.Store.Open(context.Background(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	body.Close()
	if n != size {
		t.Errorf("stored %d bytes, want %d", n, size)
	}
	if left := evalString(t, ctx, `Object.keys(localStorage).filter((k) => k.startsWith("formq:tus:")).join()`); left != "" {
		t.Errorf("localStorage still holds %q after the form was accepted", left)
	}
}
