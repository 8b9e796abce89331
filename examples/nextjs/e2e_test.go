//go:build e2enext

// Package nextjs_test runs the Next.js example against a local formq
// stack in headless Chromium: `make e2e-next`. It needs npm and network
// access to the npm registry, so it is not part of `make test`.
package nextjs_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/formq/formq/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// Secrets shared by formq's worker and the app.
const (
	webhookSecret    = "whsec_Z3Vlc3Rib29rLWVudHJpZXMtc2VjcmV0LTAxMjM=" // the webhook step (entries)
	revalidateSecret = "revalidate-secret-0123456789abcdef"             // the revalidation events
	adminToken       = "admin-token-0123456789abcdef0123456789"
)

// TestNextJSExample installs and builds the example as a user would (npm
// ci, next build), runs it with next start beside a real formq API and
// worker (real redis-server and versitygw), then signs the guestbook in
// Chromium: the form posts with formq.js, and the page shows the new
// entry without a reload once the worker has stored it and revalidated
// the page. It prints how long each part takes.
func TestNextJSExample(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "examples", "nextjs")
	app := filepath.Join(t.TempDir(), "app")
	copyApp(t, src, app)
	apiAddr, nextAddr := freePort(t), freePort(t)
	formqURL, nextURL := "http://"+apiAddr, "http://"+nextAddr

	// The example's actions file, pointed at where the app runs here.
	actions, err := os.ReadFile(filepath.Join(src, "formq", "actions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	actionsPath := filepath.Join(t.TempDir(), "actions.yaml")
	if err := os.WriteFile(actionsPath, []byte(strings.ReplaceAll(string(actions), "127.0.0.1:3000", nextAddr)), 0o644); err != nil {
		t.Fatal(err)
	}

	timings := map[string]time.Duration{}
	start := time.Now()
	npm(t, app, nil, "ci", "--no-audit", "--no-fund")
	timings["npm ci"] = time.Since(start)
	start = time.Now()
	npm(t, app, []string{"NEXT_PUBLIC_FORMQ_URL=" + formqURL}, "exec", "--", "next", "build")
	timings["next build"] = time.Since(start)

	start = time.Now()
	apiBin := testenv.Build(t, root, "./cmd/api")
	workerBin := testenv.Build(t, root, "./cmd/worker")
	timings["go build (api, worker)"] = time.Since(start)
	r := testenv.StartRedis(t)
	s3 := testenv.StartS3(t)
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_ADDR": apiAddr, "FORMQ_WORKER_ADDR": "127.0.0.1:0",
		"FORMQ_REDIS_URL": r.URL(), "FORMQ_S3_CREATE_BUCKET": "true", "FORMQ_ACTIONS": actionsPath,
		"FORMQ_SECRET": "e2e-secret-0123456789abcdef0123456789", "FORMQ_ADMIN_TOKEN": adminToken,
		"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "GUESTBOOK_WEBHOOK_SECRET": webhookSecret,
		"FORMQ_NEXT_REVALIDATE_URL": nextURL + "/api/revalidate", "FORMQ_NEXT_REVALIDATE_SECRET": revalidateSecret,
	}
	for k, v := range s3.Env() {
		env[k] = v
	}
	start = time.Now()
	startProcess(t, "api", apiBin, "", env)
	waitHTTP(t, formqURL+"/readyz")
	startProcess(t, "worker", workerBin, "", env)
	startProcess(t, "next", filepath.Join(app, "node_modules", ".bin", "next"), app, map[string]string{
		"GUESTBOOK_WEBHOOK_SECRET": webhookSecret, "FORMQ_REVALIDATE_SECRET": revalidateSecret, "NEXT_TELEMETRY_DISABLED": "1",
	}, "start", "-H", "127.0.0.1", "-p", strings.Split(nextAddr, ":")[1])
	waitHTTP(t, nextURL+"/")
	timings["start formq and next start"] = time.Since(start)

	// The revalidation route refuses what formq did not sign.
	resp, err := http.Post(nextURL+"/api/revalidate", "application/json", strings.NewReader(`{"type":"revalidate","paths":["/"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned revalidation answered %d, want 401", resp.StatusCode)
	}

	ctx := browser(t)
	name := fmt.Sprintf("Ada %d", time.Now().UnixNano())
	run(t, ctx, chromedp.Navigate(nextURL+"/"), chromedp.WaitVisible(chromedp.CSS("#name")))
	waitJS(t, ctx, 60*time.Second, "formq.js to enhance the form", `document.querySelector("form").noValidate`)
	if got := evalString(t, ctx, `document.querySelector("h2").textContent`); got != "0 entries" {
		t.Fatalf("before: %q, want 0 entries", got)
	}
	// A mark in the page's memory: a reload would lose it.
	evalString(t, ctx, `window.__notReloaded = true, ""`)
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#name"), name), chromedp.SendKeys(chromedp.CSS("#message"), "Hello from Chromium"))
	submitted := time.Now()
	run(t, ctx, chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, 60*time.Second, "the answer", `document.querySelector("[data-formq-message]").textContent != ""`)
	answered := time.Since(submitted)
	waitJS(t, ctx, 60*time.Second, "the new entry", fmt.Sprintf(`[...document.querySelectorAll("li[data-entry] strong")].some((e) => e.textContent == %q)`, name))
	visible := time.Since(submitted)

	if got := evalString(t, ctx, `String(window.__notReloaded === true) + " " + document.querySelector("h2").textContent + " " + document.querySelector("[data-formq-status-text]").textContent`); got != "true 1 entry Completed" {
		t.Errorf("after: %q, want the same page (not reloaded) with 1 entry and the status Completed", got)
	}
	// Another visitor gets the revalidated page from the server too.
	resp, err = http.Get(nextURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(html), name) {
		t.Errorf("GET / does not show the entry %q", name)
	}

	// The form links to the entry's page: the entries route answered the
	// entry's id as the save step's data.
	entryID := evalString(t, ctx, fmt.Sprintf(`[...document.querySelectorAll("li[data-entry]")].find((e) => e.querySelector("strong").textContent == %q).dataset.entry`, name))
	waitJS(t, ctx, 10*time.Second, "the link to the entry", `!!document.querySelector("a[data-entry-link]")`)
	if got := evalString(t, ctx, `new URL(document.querySelector("a[data-entry-link]").href).pathname`); got != "/entries/"+entryID {
		t.Errorf("the entry's link goes to %s, want /entries/%s", got, entryID)
	}

	// The entries route refuses a word it does not take and a duplicate:
	// the error shows beside the field, nothing is added.
	for _, c := range []struct{ name, message, want string }{
		{"Mallory", "Cheap casino chips", "Please leave out “casino”: the guestbook does not take it."},
		{name, "Hello from Chromium", "This message is already in the guestbook."},
	} {
		run(t, ctx, chromedp.SetValue(chromedp.CSS("#name"), c.name), chromedp.SetValue(chromedp.CSS("#message"), c.message), chromedp.Click(chromedp.CSS("button")))
		waitJS(t, ctx, 30*time.Second, "the app's refusal", fmt.Sprintf(`(document.querySelector("#message-error") || {}).textContent == %q`, c.want))
		if got := evalString(t, ctx, `document.querySelector("#message").value + "|" + document.querySelector("h2").textContent`); got != c.message+"|1 entry" {
			t.Errorf("refusal of %q: %q, want the message kept and still 1 entry", c.message, got)
		}
	}

	// Without JavaScript: the browser lands on the new entry's page (the
	// action's redirect, filled with the id), and a refusal comes back as
	// formq's form with the error beside the field.
	nojs := newTab(t, ctx)
	other := fmt.Sprintf("Grace %d", time.Now().UnixNano())
	run(t, nojs, noScript(true), chromedp.Navigate(nextURL+"/"), chromedp.WaitReady(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), other), chromedp.SendKeys(chromedp.CSS("#message"), "Hello without JavaScript"),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("article[data-entry]")))
	loc := evalLocation(t, nojs)
	if id := strings.TrimPrefix(loc, nextURL+"/entries/"); id == loc || id == "" {
		t.Errorf("without JavaScript the post landed on %s, want the entry's page", loc)
	}
	if got := evalHTML(t, nojs, "article"); !strings.Contains(got, other) {
		t.Errorf("the entry's page shows %s, want %q", got, other)
	}
	run(t, nojs, chromedp.Navigate(nextURL+"/"), chromedp.WaitReady(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "Mallory"), chromedp.SendKeys(chromedp.CSS("#message"), "More spam"),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitReady(chromedp.CSS("#form-errors")))
	if got := evalHTML(t, nojs, "html"); !strings.Contains(got, "Please leave out “spam”") || !strings.Contains(got, "More spam") {
		t.Errorf("the refusal without JavaScript: the hosted form lacks the error or the value:\n%s", got)
	}

	timings["submit to answer"] = answered
	timings["submit to entry visible"] = visible
	for _, k := range []string{"npm ci", "next build", "go build (api, worker)", "start formq and next start", "submit to answer", "submit to entry visible"} {
		fmt.Printf("e2e-next: %-28s %8.2fs\n", k, timings[k].Seconds())
	}
}

// copyApp copies the example without what npm and next make.
func copyApp(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		switch rel {
		case "node_modules", ".next", "data":
			return filepath.SkipDir
		}
		if strings.HasSuffix(rel, "_test.go") || rel == "next-env.d.ts" {
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// npm runs npm in dir, failing the test with its output.
func npm(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("npm", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "NEXT_TELEMETRY_DISABLED=1"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// startProcess runs a server until the test ends (SIGTERM, then SIGKILL),
// its output in a log file shown when the test fails.
func startProcess(t *testing.T, name, bin, dir string, env map[string]string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, tail(string(b), 60))
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP waits for url to answer 200.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 in time", url)
}

// browser starts headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (make install installs Debian's chromium): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1000, 1200),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// newTab opens another tab of the test's browser, closed when the test ends.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// noScript turns the page's JavaScript off or on.
func noScript(off bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: off})
		return chromedp.Void{}, err
	}
}

func evalLocation(t *testing.T, ctx context.Context) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func evalHTML(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(sel)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitJS polls a JavaScript condition until it is true.
func waitJS(t *testing.T, ctx context.Context, timeout time.Duration, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	t.Fatalf("timed out waiting for %s (%s); page:\n%s", what, expr, html)
}
