package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"
	"github.com/formq/formq/client"
	"github.com/formq/formq/internal/teststack"
)

// offlinePage is a site that hosts formq.js itself (so that its page
// loads while formq's API is cut) and a service worker importing formq's
// formq-sw.js, at /offline and /sw.js.
func offlinePage(s *site, worker bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for path, a := range map[string]*client.Asset{"/formq.js": client.FormqJS, "/formq-offline.js": client.OfflineJS, "/formq.css": client.StyleCSS} {
			if r.URL.Path == path {
				w.Header().Set("Content-Type", a.ContentType)
				w.Write(a.Body)
				return
			}
		}
		switch r.URL.Path {
		case "/blank":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Elsewhere</title></head><body><p>Another page of the site, without formq.js.</p></body></html>`)
		case "/sw.js":
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprintf(w, "import %q;\n", s.api+"/formq-sw.js")
		case "/offline":
			register := ""
			if worker {
				register = `<script>window.sw = navigator.serviceWorker.register("/sw.js", { type: "module" }).then(() => navigator.serviceWorker.ready).then(() => true);</script>`
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, pageHead, "Sign up (offline)")
			fmt.Fprintf(w, `%[2]s<link rel="stylesheet" href="/formq.css"><script type="module" src="/formq.js"></script>
<script>window.waited = 0; document.addEventListener("formq:waiting", () => window.waited++);</script>
<form id="signup" data-formq data-formq-success="message" method="post" enctype="multipart/form-data" action="%[1]s/actions/signup">
%[3]s
<button>Sign up</button>
<p data-formq-message></p>
</form></main></body></html>`, s.api, register, formFields(nil, nil, nil))
		default:
			http.NotFound(w, r)
		}
	}
}

// offline cuts the tab's network (navigator.onLine turns false and no
// request leaves, its service worker's included), or gives it back.
func offline(on bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		if _, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: on, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			EmulateOfflineServiceWorker: &on,
			MatchedNetworkConditions:    []*network.Conditions{{Offline: on, DownloadThroughput: -1, UploadThroughput: -1}}})
		return chromedp.Void{}, err
	}
}

// cutAPI makes the tab's requests to formq's API fail (the page's own
// origin still answers), or lets them through again.
func cutAPI(s *site, on bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		var patterns []*network.BlockPattern
		if on {
			patterns = []*network.BlockPattern{{URLPattern: s.api + "/*", Block: true}}
		}
		_, err := chromedp.Call(ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: patterns})
		return chromedp.Void{}, err
	}
}

// outbox is what formq.js keeps in IndexedDB: each record's key, field
// names and file sizes.
const outboxJS = `new Promise((ok, no) => {
  const r = indexedDB.open("formq", 1);
  r.onupgradeneeded = () => r.result.createObjectStore("outbox", { keyPath: "key" });
  r.onsuccess = () => { const g = r.result.transaction("outbox").objectStore("outbox").getAll();
    g.onsuccess = () => ok(JSON.stringify(g.result.map((x) => ({ key: x.key, url: x.url, answered: !!x.answer,
      fields: x.entries.map(([k, v]) => typeof v == "string" ? k + "=" + (k[0] == "_" ? "…" : v) : k + ":" + v.name + ":" + v.size) })))); g.onerror = () => no(g.error); };
  r.onerror = () => no(r.error);
})`

type outboxRecord struct {
	Key, URL string
	Answered bool
	Fields   []string
}

func readOutbox(t *testing.T, ctx context.Context) []outboxRecord {
	t.Helper()
	var l []outboxRecord
	if err := json.Unmarshal([]byte(value(t, ctx, chromedp.Evaluate[string](outboxJS, chromedp.EvalAwaitPromise))), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// fillSignup fills the sign-up form with a valid answer and an avatar.
func fillSignup(t *testing.T, ctx context.Context, avatarSize int) (avatar string) {
	t.Helper()
	avatar = pngFile(t, "me.png", avatarSize)
	run(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), "Ada Offline"), chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
		chromedp.SetValue(chromedp.CSS("#plan"), "pro"), chromedp.Click(chromedp.CSS("#agree")),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{avatar}),
	)
	return avatar
}

// TestOfflineSubmissionIsKeptAndSentOnce: a form sent while the browser
// is offline sends nothing, says it is saved and waits, and keeps values
// and file in IndexedDB; a reload while formq's API is cut shows it still
// waiting, with the same key; once the API answers again it is sent once,
// and formq holds exactly one submission, with the file.
func TestOfflineSubmissionIsKeptAndSentOnce(t *testing.T) {
	s := startSite(t)
	s.more = offlinePage(s, false)
	ctx := tab(t)
	const avatarSize = 30 << 10
	run(t, ctx, chromedp.Navigate(s.page+"/offline"), chromedp.WaitVisible(chromedp.CSS("button")))
	waitJS(t, ctx, "formq.js to enhance the form", `document.querySelector("form").noValidate`)
	avatar := fillSignup(t, ctx, avatarSize)

	run(t, ctx, offline(true))
	waitJS(t, ctx, "the browser to be offline", `navigator.onLine === false`)
	run(t, ctx, chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the waiting notice", `document.querySelector("form").hasAttribute("data-formq-waiting")`)
	if got := evalString(t, ctx, `document.querySelector("#signup-summary").textContent`); got != "Saved — will send when you're back online." {
		t.Errorf("waiting notice %q", got)
	}
	if got := evalString(t, ctx, `getComputedStyle(document.querySelector("#signup-summary")).borderTopColor`); got != "rgb(122, 91, 0)" {
		t.Errorf("waiting notice's border %s, want formq.css's waiting colour rgb(122, 91, 0)", got)
	}
	screenshot(t, ctx, "form-offline-waiting")
	kept := readOutbox(t, ctx)
	if len(kept) != 1 || !strings.HasSuffix(kept[0].URL, "/actions/signup") || len(kept[0].Key) < 16 ||
		!strings.Contains(strings.Join(kept[0].Fields, " "), "name=Ada Offline") || !strings.Contains(strings.Join(kept[0].Fields, " "), fmt.Sprintf("avatar:me.png:%d", avatarSize)) {
		t.Fatalf("outbox while offline: %+v", kept)
	}
	key := kept[0].Key
	if n := s.posts.Load(); n != 0 {
		t.Errorf("%d posts reached formq while offline", n)
	}

	// Back online, but formq's API is cut: the page reloads (its origin
	// answers), shows the submission waiting, and tries it in vain.
	run(t, ctx, cutAPI(s, true), offline(false), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("button")))
	waitJS(t, ctx, "the waiting notice after the reload", `document.querySelector("form").hasAttribute("data-formq-waiting") && window.waited > 0`)
	if got := evalString(t, ctx, `document.querySelector("#name").value + "|" + document.querySelector("#signup-summary").textContent`); got != "Ada Offline|Saved — will send when you're back online." {
		t.Errorf("after the reload: %q", got)
	}
	if kept := readOutbox(t, ctx); len(kept) != 1 || kept[0].Key != key {
		t.Fatalf("outbox after the reload: %+v, want the one record with key %s", kept, key)
	}
	if n := s.posts.Load(); n != 0 {
		t.Errorf("%d posts reached formq while its API was cut", n)
	}

	// The API answers again; the connection comes back: sent once.
	run(t, ctx, cutAPI(s, false), offline(true))
	waitJS(t, ctx, "the browser to be offline", `navigator.onLine === false`)
	run(t, ctx, offline(false))
	answeredOnce(t, ctx, s)
	if evalString(t, ctx, `document.querySelector("form").hasAttribute("data-formq-waiting") ? "waiting" : ""`) != "" {
		t.Error("the form still says it is waiting")
	}
	ids := storedSignups(t, s)
	if len(ids) != 1 {
		t.Fatalf("formq holds %d submissions, want 1: %v", len(ids), ids)
	}
	// The key was the one kept: sending the same answer again with it names
	// the same submission.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, kv := range [][2]string{{"name", "Ada Offline"}, {"email", "ada@example.com"}, {"plan", "pro"}, {"agree", "true"}, {"_idempotency", key}} {
		mw.WriteField(kv[0], kv[1])
	}
	fw, _ := mw.CreateFormFile("avatar", "me.png")
	png, _ := os.ReadFile(avatar)
	fw.Write(png)
	mw.Close()
	resp, raw := teststack.Post(t, s.stack.APIURL+"/actions/signup", &body, mw.FormDataContentType(), map[string]string{"Accept": "application/json"})
	if !strings.Contains(string(raw), `"id":"`+ids[0]+`"`) {
		t.Errorf("the kept key %s sent again does not name submission %s: %d %s", key, ids[0], resp.StatusCode, raw)
	}
}

// TestBackgroundSyncSendsWithThePageClosed: with the site's service worker
// importing formq-sw.js, a submission kept offline is sent by the worker's
// Background Sync after its page was closed, once, with its key; the next
// time the form's page opens it shows formq's answer and sends nothing.
func TestBackgroundSyncSendsWithThePageClosed(t *testing.T) {
	s := startSite(t)
	s.more = offlinePage(s, true)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/offline"), chromedp.WaitVisible(chromedp.CSS("button")))
	if !value(t, ctx, chromedp.Evaluate[bool](`window.sw`, chromedp.EvalAwaitPromise)) {
		t.Fatal("the service worker did not start")
	}
	waitJS(t, ctx, "formq.js to enhance the form", `document.querySelector("form").noValidate`)
	fillSignup(t, ctx, 20<<10)
	// Offline: the page's requests fail in the browser, the worker's (the
	// browser may run its sync at once) at formq's door.
	s.cut.Store(true)
	run(t, ctx, offline(true))
	waitJS(t, ctx, "the browser to be offline", `navigator.onLine === false`)
	run(t, ctx, chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the waiting notice", `document.querySelector("form").hasAttribute("data-formq-waiting")`)
	kept := readOutbox(t, ctx)
	if len(kept) != 1 {
		t.Fatalf("outbox while offline: %+v", kept)
	}
	time.Sleep(time.Second)
	if n := s.posts.Load(); n != 0 {
		t.Fatalf("%d posts reached formq while offline", n)
	}

	// The page closes; the connection comes back, and the browser fires
	// the worker's sync (DevTools stands in for the browser's timing).
	closeTab(t, ctx)
	other := tab(t)
	var reg atomic.Value
	if err := chromedp.Listen(other, func(ev any) {
		if e, ok := ev.(*serviceworker.EventWorkerRegistrationUpdated); ok {
			for _, r := range e.Registrations {
				if strings.HasPrefix(r.ScopeURL, s.page) && !r.IsDeleted {
					reg.Store(r.RegistrationID)
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	run(t, other, chromedp.Navigate(s.page+"/blank"))
	if _, err := chromedp.Call(other, serviceworker.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); reg.Load() == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no service worker registration of the site")
		}
	}
	s.cut.Store(false)
	if _, err := chromedp.Call(other, serviceworker.DispatchSyncEvent, serviceworker.DispatchSyncEventParams{
		Origin: s.page, RegistrationID: reg.Load().(serviceworker.RegistrationID), Tag: "formq"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); s.posts.Load() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker sent nothing; outbox %+v", readOutbox(t, other))
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if l := readOutbox(t, other); len(l) == 1 && l[0].Answered && l[0].Key == kept[0].Key {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox after the worker's send: %+v", readOutbox(t, other))
		}
	}
	ids := storedSignups(t, s)
	if len(ids) != 1 {
		t.Fatalf("formq holds %d submissions, want 1: %v", len(ids), ids)
	}

	// The form's page again: it shows the answer the worker kept.
	run(t, other, chromedp.Navigate(s.page+"/offline"), chromedp.WaitVisible(chromedp.CSS("button")))
	answeredOnce(t, other, s)
}

// closeTab closes a tab before the test ends.
func closeTab(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestUnreachableServerKeepsTheSubmission: online, but formq does not
// answer: after its retries formq.js keeps the submission (a form with
// data-formq-offline="off" says it could not send instead), and a page
// loading later sends it.
func TestUnreachableServerKeepsTheSubmission(t *testing.T) {
	s := startSite(t)
	s.more = offlinePage(s, false)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/offline"), chromedp.WaitVisible(chromedp.CSS("button")))
	waitJS(t, ctx, "formq.js to enhance the form", `document.querySelector("form").noValidate`)
	fillSignup(t, ctx, 10<<10)
	s.cut.Store(true)
	run(t, ctx, chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the waiting notice", `document.querySelector("form").hasAttribute("data-formq-waiting") && !document.querySelector("form").hasAttribute("data-pending")`)
	if kept := readOutbox(t, ctx); len(kept) != 1 {
		t.Fatalf("outbox: %+v", kept)
	}
	value(t, ctx, chromedp.Evaluate[bool](`document.querySelector("form").dataset.formqOffline = "off"; true`))
	run(t, ctx, chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the network notice", `(document.querySelector("#signup-summary") || {}).textContent == "The form could not reach the server. Your answers are still here: try again."`)
	if kept := readOutbox(t, ctx); len(kept) != 1 {
		t.Fatalf("a form with offline off kept its submission: %+v", kept)
	}
	if ids := adminSubmissions(t, s.stack.APIURL, "signup"); len(ids) != 0 {
		t.Fatalf("formq holds %v while cut", ids)
	}
	s.cut.Store(false)
	run(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("button")))
	waitJS(t, ctx, "the answer", `document.querySelector("[data-formq-message]").textContent == "Welcome aboard!"`)
	ids := storedSignups(t, s)
	if len(ids) != 1 || s.posts.Load() != 1 {
		t.Errorf("formq holds %v after %d posts, want one of one", ids, s.posts.Load())
	}
}

// storedSignups lists the sign-ups formq stored, once it lists any (the
// inbox lists a submission once the worker indexed it) or after 10 s.
func storedSignups(t *testing.T, s *site) []string {
	t.Helper()
	ids := adminSubmissions(t, s.stack.APIURL, "signup")
	for deadline := time.Now().Add(10 * time.Second); len(ids) == 0 && time.Now().Before(deadline); ids = adminSubmissions(t, s.stack.APIURL, "signup") {
		time.Sleep(100 * time.Millisecond)
	}
	return ids
}

// answeredOnce waits for the form to show formq's answer and the outbox
// to empty, and checks that one post reached formq.
func answeredOnce(t *testing.T, ctx context.Context, s *site) {
	t.Helper()
	waitJS(t, ctx, "the answer", `document.querySelector("[data-formq-message]").textContent == "Welcome aboard!"`)
	for deadline := time.Now().Add(10 * time.Second); len(readOutbox(t, ctx)) > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the outbox still holds %+v after formq's answer", readOutbox(t, ctx))
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := s.posts.Load(); n != 1 {
		t.Errorf("%d posts reached formq, want 1", n)
	}
}
