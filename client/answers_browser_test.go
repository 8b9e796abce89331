package client_test

// The React hook (formq-react.js on React 19) in Chromium, and the site
// the tests of the app's answers use: a real API and worker whose webhook
// step posts to a local app, and a developer's pages on another origin
// (the React page, formq.js forms, a form without JavaScript).

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/formq/formq/internal/teststack"
)

// usersApp is the app behind the webhook step: it creates users, and
// refuses an address it has already (taken...@) with a field error. Some
// addresses make it slower than the action's wait, so the answer reaches
// the browser through the status instead (late...@, sloth...@ refused;
// slow...@ created).
type usersApp struct {
	next  atomic.Int64
	mu    sync.Mutex
	files map[string]map[string]int64 // created user id → field → file size
}

// usersAnswers: by the start of an address, how long the app takes and
// whether it refuses it. The action waits one second.
var usersAnswers = []struct {
	prefix string
	delay  time.Duration
	refuse bool
}{
	{"taken", 0, true},
	{"late", 2500 * time.Millisecond, true},
	{"sloth", 6 * time.Second, true},
	{"slow", 2500 * time.Millisecond, false},
}

func (u *usersApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var sub struct {
		Values map[string]any
		Files  []struct {
			Field string
			Size  int64
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&sub); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	email, _ := sub.Values["email"].(string)
	refuse := false
	for _, a := range usersAnswers {
		if strings.HasPrefix(email, a.prefix) {
			time.Sleep(a.delay)
			refuse = a.refuse
			break
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if refuse {
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"errors":{"email":["This email is already registered"]},"message":"We could not create your account."}`)
		return
	}
	id := fmt.Sprintf("u%d", u.next.Add(1))
	u.mu.Lock()
	u.files[id] = map[string]int64{}
	for _, f := range sub.Files {
		u.files[id][f.Field] = f.Size
	}
	u.mu.Unlock()
	fmt.Fprintf(w, `{"data":{"id":%q}}`, id)
}

// answersSite is formq with the users app behind two actions, and a
// developer's pages on another origin.
type answersSite struct {
	stack     *teststack.Stack
	api, page string
	app       *usersApp
}

// plainActions is create-user as formq checks it alone: no step, no wait.
const plainActions = `actions:
  create-user:
    fields:
      email: {type: email, required: true}
    uploads:
      avatar: {max_size: 5MB, types: [image/png]}
    message: "User created!"
`

// startAnswersSite runs the site with an actions file, where APP stands
// for the users app's URL and PAGE for the pages'.
func startAnswersSite(t *testing.T, actionsYAML string) *answersSite {
	t.Helper()
	s := &answersSite{app: &usersApp{files: map[string]map[string]int64{}}}
	appSrv := httptest.NewServer(s.app)
	t.Cleanup(appSrv.Close)
	pageSrv := httptest.NewServer(http.HandlerFunc(s.servePage))
	t.Cleanup(pageSrv.Close)
	s.page = pageSrv.URL
	actions := writeFile(t, "answers-actions.yaml", []byte(strings.NewReplacer("APP", appSrv.URL, "PAGE", s.page).Replace(actionsYAML)))
	s.stack = teststack.Start(t, map[string]string{
		"FORMQ_ACTIONS": actions, "FORMQ_ALLOWED_ORIGINS": s.page, "FORMQ_ADMIN_TOKEN": testAdminToken,
		"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "USERS_WEBHOOK_SECRET": "users-webhook-secret-0123456789",
	})
	s.api = s.stack.APIURL
	return s
}

// reactDist is the bundled React test page (testdata/react, see its build.sh).
const reactDist = "testdata/react/dist"

// servePage is the developer's site: the guide's React form, the same
// form with formq.js (following the redirect, or staying with the live
// status), without JavaScript reading formq_state back, and the page the
// redirect lands on.
func (s *answersSite) servePage(w http.ResponseWriter, r *http.Request) {
	if name, ok := strings.CutPrefix(r.URL.Path, "/react/"); ok {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, filepath.Join(reactDist, filepath.Base(name)))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.URL.Path {
	case "/react":
		// The import map gives formq's /formq-react.js the page's React.
		fmt.Fprintf(w, pageHead, "Create user (React)")
		fmt.Fprintf(w, `<script type="importmap">{"imports": {"react": "/react/react.js", "formq-react": "%[1]s/formq-react.js"}}</script>
<script>window.FORMQ = %[2]q;</script>
<div id="root"></div>
<script type="module" src="/react/app.js"></script>
</main></body></html>`, s.api, s.api)
	case "/js", "/js-status":
		attrs := ""
		if r.URL.Path == "/js-status" {
			attrs = ` data-formq-success="message" data-formq-status`
		}
		fmt.Fprintf(w, pageHead, "Create user")
		fmt.Fprintf(w, `<script type="module" src="%[1]s/formq.js"></script>
<script>
window.seen = [];
for (const n of ["submit", "invalid", "success", "error"]) document.addEventListener("formq:" + n, (e) => {
  window.seen.push({event: n, source: e.detail.source, message: e.detail.message, status: e.detail.status, data: e.detail.data});
  sessionStorage.setItem("seen", JSON.stringify(window.seen));
});
</script>
<form data-formq%[2]s method="post" enctype="multipart/form-data" action="%[1]s/actions/create-user">
<label for="email">Email</label><input id="email" name="email" type="email">
<label for="avatar">Avatar</label><input id="avatar" name="avatar" type="file">
<button>Create user</button>
<p data-formq-message></p><p data-formq-status-text></p>
</form></main></body></html>`, s.api, attrs)
	case "/nojs":
		var state struct {
			Errors map[string][]string
			Values map[string]string
			Kept   map[string][]struct{ Ref, Filename string }
			Error  struct{ Message string }
		}
		if tok := r.URL.Query().Get("formq_state"); tok != "" {
			resp, err := http.Get(s.api + "/actions/create-user/state/" + url.PathEscape(tok))
			if err != nil || resp.StatusCode != 200 {
				http.Error(w, "state", 500)
				return
			}
			json.NewDecoder(resp.Body).Decode(&state)
			resp.Body.Close()
		}
		fmt.Fprintf(w, pageHead, "Create user (no JavaScript)")
		if state.Error.Message != "" {
			fmt.Fprintf(w, `<p id="summary">%s</p>`, htmlEscape(state.Error.Message))
		}
		fmt.Fprintf(w, `<form method="post" enctype="multipart/form-data" action="%[1]s/actions/create-user">
<input type="hidden" name="_error_redirect" value="%[2]s/nojs">
<label for="email">Email</label><input id="email" name="email" type="email" value="%[3]s">`, s.api, s.page, htmlEscape(state.Values["email"]))
		for _, m := range state.Errors["email"] {
			fmt.Fprintf(w, `<p class="error" id="email-error">%s</p>`, htmlEscape(m))
		}
		fmt.Fprint(w, `<label for="avatar">Avatar</label><input id="avatar" name="avatar" type="file">`)
		for _, k := range state.Kept["avatar"] {
			fmt.Fprintf(w, `<p class="kept" id="avatar-kept">%s kept</p><input type="hidden" name="avatar" value="%s">`, htmlEscape(k.Filename), htmlEscape(k.Ref))
		}
		fmt.Fprint(w, `<button>Create user</button></form></main></body></html>`)
	case "/thanks":
		fmt.Fprintf(w, pageHead, "Thanks")
		fmt.Fprintf(w, `<p id="thanks">Thanks, %s</p></main></body></html>`, htmlEscape(r.URL.Query().Get("id")))
	default:
		http.NotFound(w, r)
	}
}

// TestReactBundleIsCurrent: the bundled test page was built from the
// sources beside it (testdata/react: npm ci && npm run build).
func TestReactBundleIsCurrent(t *testing.T) {
	sums, err := os.ReadFile(filepath.Join(reactDist, "sources.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(sums)) {
		sum, name, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if !ok {
			t.Fatalf("sources.sha256: %q", line)
		}
		if got := sha256File(t, filepath.Join("testdata/react", name)); got != sum {
			t.Errorf("testdata/react/%s changed since dist/ was built: run npm ci && npm run build in client/testdata/react", name)
		}
		n++
	}
	if n < 5 {
		t.Errorf("sources.sha256 lists %d files", n)
	}
}

// TestReactHookCreateUserForm: the guide's CreateUserForm on React 19,
// changed in one import (formq's useFormq for React's useActionState),
// posting to an action formq checks alone. formq's field error shows
// beside the email field, the value and the avatar kept (React resets
// the form after each action: the value comes back from state.values);
// the second submit, without choosing the file again, is accepted with
// the kept avatar, and the action's message reaches the page.
func TestReactHookCreateUserForm(t *testing.T) {
	s := startAnswersSite(t, plainActions)
	ctx := tab(t)
	run(t, ctx, chromedp.Navigate(s.page+"/react"), chromedp.WaitVisible(chromedp.CSS("#email")))
	if v := evalString(t, ctx, `window.reactVersion`); !strings.HasPrefix(v, "19.") {
		t.Fatalf("React %s, want 19", v)
	}
	const avatarSize = 300 << 10
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#email"), "ada.example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#avatar"), []string{pngFile(t, "me.png", avatarSize)}),
		chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "formq's field error", `!!document.querySelector("#email-error")`)
	got := evalString(t, ctx, `[document.querySelector("#email-error").textContent, document.querySelector("[aria-live]").textContent,
		document.querySelector("#email").value, document.querySelector("#avatar").files.length, (document.querySelector("#avatar-kept") || {}).textContent].join("|")`)
	if got != "Email must be a valid email address|Please fix the errors below.|ada.example.com|0|me.png kept" {
		t.Errorf("after formq's refusal: %q", got)
	}
	run(t, ctx, chromedp.SetValue(chromedp.CSS("#email"), "ada@example.com"), chromedp.Click(chromedp.CSS("button")))
	waitJS(t, ctx, "the action's message", `document.querySelector("[aria-live]").textContent == "User created!"`)
	if got := evalString(t, ctx, `String(!!document.querySelector("#email-error")) + "|" + document.querySelector("#email").value`); got != "false|" {
		t.Errorf("after the success: error shown, value: %q", got)
	}
	ids := adminSubmissions(t, s.api, "create-user")
	if len(ids) != 1 {
		t.Fatalf("stored submissions %v, want one", ids)
	}
	if files := submissionFiles(t, &site{stack: s.stack}, ids[0]); files["avatar"] != avatarSize {
		t.Errorf("submission %s files %v, want the kept avatar of %d bytes", ids[0], files, avatarSize)
	}
}

// adminSubmissions lists the ids of an action's stored submissions, asking
// formq at api.
func adminSubmissions(t *testing.T, api, action string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, api+"/admin/submissions?action="+action, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct{ Submissions []struct{ ID string } }
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin submissions: %d %v", resp.StatusCode, err)
	}
	var ids []string
	for _, x := range ans.Submissions {
		ids = append(ids, x.ID)
	}
	return ids
}

func sha256File(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}
