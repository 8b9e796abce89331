package client_test

// Browser tests: Debian's chromium, driven by chromedp, against a real
// API and worker (teststack) behind a counting proxy, and a developer's
// page served from another origin. One browser per test binary; each test
// opens its own tabs.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

// shots is where the tests leave screenshots for people to look at.
const shots = "/tmp/formq-shots"

var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserCancel context.CancelFunc
	browserErr    error
)

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	if browserCancel != nil {
		browserCancel()
	}
	os.Exit(code)
}

// browser starts (once) headless chromium and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(func() {
		path, err := exec.LookPath("chromium")
		if err != nil {
			browserErr = fmt.Errorf("chromium not found (make test installs Debian's chromium): %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "formq-chromium-")
		if err != nil {
			browserErr = err
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path), chromedp.UserDataDir(dir),
			chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1000, 1200),
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		if err := chromedp.Do(ctx); err != nil {
			browserErr = fmt.Errorf("start chromium: %w", err)
			cancelCtx()
			cancelAlloc()
			return
		}
		browserCtx = ctx
		browserCancel = func() { cancelCtx(); cancelAlloc(); os.RemoveAll(dir) }
	})
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	return browserCtx
}

// tab opens a new tab that closes when the test ends.
func tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser(t))
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// run runs steps in the tab, failing the test at the first error.
func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// value runs one action and returns its value.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// site is formq behind a counting proxy, and a developer's page on
// another origin.
type site struct {
	stack *teststack.Stack
	api   string // the proxy: what pages use as formq's URL
	page  string // the developer's origin
	posts atomic.Int64
	bytes atomic.Int64 // request body bytes of POST /actions/* the API received
	// drop and busy make the proxy fail the next posts: drop passes the
	// post to formq and loses its answer (the connection closes), busy
	// answers 503 as formq does while Redis or S3 is down.
	drop, busy atomic.Int64
	// cut makes the proxy close every connection unanswered and unsent
	// to formq, as if formq could not be reached.
	cut atomic.Bool
	// more serves the page paths servePage does not know, when set.
	more http.HandlerFunc
}

// startSite runs the stack, the proxy and the developer's pages.
func startSite(t *testing.T) *site { return startSiteWith(t, nil) }

// startSiteWith is startSite with a deployment-wide theme (the actions
// file's top-level theme:) made from the page's own origin.
func startSiteWith(t *testing.T, theme func(page string) string) *site {
	t.Helper()
	s := &site{}
	pageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.servePage(t, w, r) }))
	t.Cleanup(pageSrv.Close)
	s.page = pageSrv.URL
	actionsFile, err := filepath.Abs("testdata/actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if theme != nil {
		data, err := os.ReadFile(actionsFile)
		if err != nil {
			t.Fatal(err)
		}
		actionsFile = writeFile(t, "actions.yaml", append(data, "\ntheme: "+theme(s.page)+"\n"...))
	}
	s.stack = teststack.Start(t, map[string]string{"FORMQ_ACTIONS": actionsFile, "FORMQ_ALLOWED_ORIGINS": s.page, "FORMQ_ADMIN_TOKEN": testAdminToken})
	target, _ := url.Parse(s.stack.APIURL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // server-sent events pass at once
	proxySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cut.Load() {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/actions/") {
			s.posts.Add(1)
			if s.drop.Add(-1) >= 0 {
				proxy.ServeHTTP(httptest.NewRecorder(), r)
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			s.drop.Store(0)
			if s.busy.Add(-1) >= 0 {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
				h.Set("Access-Control-Allow-Credentials", "true")
				h.Set("Access-Control-Expose-Headers", "Retry-After")
				h.Set("Retry-After", "7")
				h.Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `{"ok":false,"error":{"code":"unavailable","message":"The service is briefly unavailable; nothing was saved. Try again shortly."}}`)
				return
			}
			s.busy.Store(0)
			r.Body = &counted{r: r.Body, n: &s.bytes, slow: r.ContentLength > 1<<20, chunk: 256 << 10, pause: 5 * time.Millisecond}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(proxySrv.Close)
	s.api = proxySrv.URL
	return s
}

// counted counts a body's bytes; a slow body is read at most chunk bytes
// at a time with a pause before each read, so the browser's upload
// progress moves in many events, as on a real link.
type counted struct {
	r     io.ReadCloser
	n     *atomic.Int64
	slow  bool
	chunk int
	pause time.Duration
}

func (c *counted) Read(p []byte) (int, error) {
	if c.slow {
		p = p[:min(len(p), c.chunk)]
		time.Sleep(c.pause)
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *counted) Close() error { return c.r.Close() }

// servePage is the developer's site: a page with client.js, the same form
// without JavaScript, and the page's server reading formq_state back.
func (s *site) servePage(t *testing.T, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.URL.Path {
	case "/js", "/js-status":
		status := ""
		if r.URL.Path == "/js-status" {
			status = ` data-formq-success="message" data-formq-status`
		}
		fmt.Fprintf(w, pageHead, "Sign up")
		fmt.Fprintf(w, `<script type="module" src="%[1]s/formq.js"></script>
<script>
// What the page saw, kept in sessionStorage across the redirect.
window.seen = {events: [], progress: [], pending: []};
const keepSeen = () => sessionStorage.setItem("seen", JSON.stringify(window.seen));
document.addEventListener("formq:submit", (e) => {
  const f = e.target, b = f.querySelector("button");
  window.seen.pending.push(f.hasAttribute("data-pending") && f.getAttribute("aria-busy") == "true" && b.disabled && b.textContent == "Sending…");
  keepSeen();
});
for (const n of ["submit", "invalid", "success", "error", "status"]) document.addEventListener("formq:" + n, (e) => { window.seen.events.push(n); keepSeen(); });
document.addEventListener("formq:progress", (e) => { window.seen.progress.push([e.detail.loaded, e.detail.total, e.detail.files.map((f) => f.field + ":" + f.loaded + "/" + f.size).join(",")]); keepSeen(); });
</script>
<form data-formq%[2]s method="post" enctype="multipart/form-data" action="%[1]s/actions/signup">
<input type="hidden" name="_redirect" value="%[3]s/thanks?id={id}">
%[4]s
<progress data-formq-progress max="1" value="0" aria-label="Upload progress"></progress>
<button data-pending-label="Sending…">Sign up</button>
<p data-formq-message></p><p data-formq-status-text></p>
</form></main></body></html>`, s.api, status, s.page, formFields(nil, nil, nil))
	case "/static":
		// A static page: formq.js alone shows what an error redirect
		// brought back (formq_state); the page's server does nothing.
		fmt.Fprintf(w, pageHead, "Sign up (static)")
		fmt.Fprintf(w, `<script type="module" src="%[1]s/formq.js"></script>
<form data-formq method="post" enctype="multipart/form-data" action="%[1]s/actions/signup">
<input type="hidden" name="_error_redirect" value="%[2]s/static">
%[3]s
<button>Sign up</button>
</form></main></body></html>`, s.api, s.page, formFields(nil, nil, nil))
	case "/static-twice":
		// The static page with a second form of the same action (a short
		// one, say in the footer): both show what formq_state brought back.
		fmt.Fprintf(w, pageHead, "Sign up (twice)")
		fmt.Fprintf(w, `<script type="module" src="%[1]s/formq.js"></script>
<form data-formq method="post" enctype="multipart/form-data" action="%[1]s/actions/signup">
%[2]s
<button>Sign up</button>
</form>
<form data-formq method="post" action="%[1]s/actions/signup" id="footer">
<label for="footer-email">Email</label><input id="footer-email" name="email" type="email">
<button>Sign up</button>
</form></main></body></html>`, s.api, formFields(nil, nil, nil))
	case "/nojs":
		// A server-rendered page: with ?formq_state= it asks formq for the
		// errors, values and kept files and shows them.
		var state struct {
			Errors map[string][]string
			Values map[string]string
			Kept   map[string][]struct{ Ref, Filename string }
		}
		if tok := r.URL.Query().Get("formq_state"); tok != "" {
			resp, err := http.Get(s.stack.APIURL + "/actions/signup/state/" + url.PathEscape(tok))
			if err != nil || resp.StatusCode != 200 {
				http.Error(w, "state", 500)
				return
			}
			json.NewDecoder(resp.Body).Decode(&state)
			resp.Body.Close()
		}
		fmt.Fprintf(w, pageHead, "Sign up (no JavaScript)")
		fmt.Fprintf(w, `<form method="post" enctype="multipart/form-data" action="%[1]s/actions/signup">
<input type="hidden" name="_redirect" value="%[2]s/thanks?id={id}">
<input type="hidden" name="_error_redirect" value="%[2]s/nojs">
%[3]s
<button>Sign up</button>
</form></main></body></html>`, s.api, s.page, formFields(state.Values, state.Errors, state.Kept))
	case "/logo.svg":
		w.Header().Set("Content-Type", "image/svg+xml")
		io.WriteString(w, `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40" viewBox="0 0 160 40"><rect width="40" height="40" rx="8" fill="#7c3aed"/><text x="50" y="28" font-family="sans-serif" font-size="22" font-weight="700" fill="#7c3aed">Club</text></svg>`)
	case "/forms.css":
		w.Header().Set("Content-Type", "text/css")
		io.WriteString(w, `:root{--formq-radius:0;--formq-font:Georgia,serif}`)
	case "/thanks":
		fmt.Fprintf(w, pageHead, "Thanks")
		fmt.Fprintf(w, `<p id="thanks">Thanks, %s</p></main></body></html>`, htmlEscape(r.URL.Query().Get("id")))
	default:
		if s.more != nil {
			s.more(w, r)
			return
		}
		http.NotFound(w, r)
	}
}

const pageHead = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%s</title>
<style>body{font:16px/1.5 Georgia,serif;max-width:34rem;margin:2rem auto;background:#fffaf0;color:#222}
label{display:block;margin-top:1rem}.error{color:#a00}.summary{border:2px solid #a00;padding:.5rem 1rem}
[aria-invalid=true]{outline:2px solid #a00}</style></head><body><main><h1>Join the club</h1>`

// formFields writes the page's own fields, with errors and values when a
// formq_state came back.
func formFields(values map[string]string, errs map[string][]string, kept map[string][]struct{ Ref, Filename string }) string {
	var b strings.Builder
	field := func(name, label, input string) {
		fmt.Fprintf(&b, `<label for="%s">%s</label>%s`, name, label, input)
		if msgs := errs[name]; len(msgs) > 0 {
			fmt.Fprintf(&b, `<p class="error" id="%s-server-error">%s</p>`, name, htmlEscape(strings.Join(msgs, " ")))
		}
		for _, k := range kept[name] {
			fmt.Fprintf(&b, `<p class="kept">%s kept</p><input type="hidden" name="%s" value="%s">`, htmlEscape(k.Filename), name, k.Ref)
		}
	}
	v := func(name string) string { return htmlEscape(values[name]) }
	field("name", "Name", fmt.Sprintf(`<input id="name" name="name" value="%s">`, v("name")))
	field("email", "Email", fmt.Sprintf(`<input id="email" name="email" type="email" value="%s">`, v("email")))
	field("plan", "Plan", `<select id="plan" name="plan"><option value="">Choose</option><option value="free">Free</option><option value="pro">Pro</option></select>`)
	field("agree", "Terms", `<input id="agree" name="agree" type="checkbox" value="true">`)
	field("avatar", "Avatar", `<input id="avatar" name="avatar" type="file">`)
	field("document", "Portfolio", `<input id="document" name="document" type="file">`)
	return b.String()
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// pngFile writes a file that sniffs as PNG, size bytes long.
func pngFile(t *testing.T, name string, size int) string {
	t.Helper()
	b := make([]byte, size)
	copy(b, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")
	return writeFile(t, name, b)
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitJS polls a JavaScript condition until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	t.Fatalf("timed out waiting for %s (%s); page:\n%s", what, expr, html)
}

func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	return value(t, ctx, chromedp.Evaluate[string](expr))
}

// screenshot saves the page under /tmp/formq-shots.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := value(t, ctx, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// axeSource is axe-core, injected into pages.
var axeSource = sync.OnceValues(func() ([]byte, error) { return os.ReadFile("testdata/axe.min.js") })

// noAxeViolations runs axe-core on the page and fails on any violation.
func noAxeViolations(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatal(err)
	}
	value(t, ctx, chromedp.Evaluate[bool](string(src)+";true"))
	out := value(t, ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then((r) => JSON.stringify({
			passes: r.passes.length,
			violations: r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary)}))}))`,
		chromedp.EvalAwaitPromise))
	var res struct {
		Passes     int
		Violations []struct {
			ID, Impact, Help string
			Nodes            []string
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("axe: %v: %s", err, out)
	}
	if res.Passes == 0 {
		t.Fatalf("axe on %s checked nothing", what)
	}
	for _, v := range res.Violations {
		t.Errorf("axe on %s: %s (%s): %s\n  %s", what, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
	}
	t.Logf("axe on %s: %d rules passed, %d violations", what, res.Passes, len(res.Violations))
}

// darkMode makes the page prefer a dark colour scheme.
func darkMode(on bool) chromedp.Action[chromedp.Void] {
	v := "light"
	if on {
		v = "dark"
	}
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}})
		return chromedp.Void{}, err
	}
}

// inBothThemes saves the page as shot-light.png and shot-dark.png and
// runs axe-core on each; the page is left in the light theme.
func inBothThemes(t *testing.T, ctx context.Context, shot, what string) {
	t.Helper()
	screenshot(t, ctx, shot+"-light")
	noAxeViolations(t, ctx, what+" (light)")
	run(t, ctx, darkMode(true))
	screenshot(t, ctx, shot+"-dark")
	noAxeViolations(t, ctx, what+" (dark)")
	run(t, ctx, darkMode(false))
}

// onAPhone shows the page 390 px wide, saves it as shot-phone.png and
// fails when it scrolls sideways; the viewport stays a phone's.
func onAPhone(t *testing.T, ctx context.Context, shot, what string) {
	t.Helper()
	run(t, ctx, chromedp.EmulateViewport(390, 844))
	screenshot(t, ctx, shot+"-phone")
	if w := evalString(t, ctx, `String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("%s is %spx wide on a 390px phone", what, w)
	}
}

// noScript turns the page's JavaScript off or on.
func noScript(off bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: off})
		return chromedp.Void{}, err
	}
}

// testAdminToken lets the tests read what the API stored (file sizes are
// the admin's view of a submission).
const testAdminToken = "client-tests-admin-token-0123456789abcdef"
