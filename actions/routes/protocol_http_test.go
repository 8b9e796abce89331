package routes_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/routes"
	"github.com/formq/formq/actions/submit"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
)

// TestEveryErrorCode reaches each code of the contract's table over HTTP
// and checks its status and JSON shape. unavailable has its own test.
func TestEveryErrorCode(t *testing.T) {
	st := startActions(t, nil)
	valid := url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}
	tests := []struct {
		name   string
		do     func() (*http.Response, []byte)
		status int
		code   string
	}{
		{"bad_request: truncated multipart", func() (*http.Response, []byte) {
			body := "--XX\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n--XX\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nada@exa"
			return teststack.Post(t, st.APIURL+"/actions/create-user", strings.NewReader(body), "multipart/form-data; boundary=XX", map[string]string{"Accept": "application/json"})
		}, 400, "bad_request"},
		{"bad_request: multipart without boundary", func() (*http.Response, []byte) {
			return teststack.Post(t, st.APIURL+"/actions/create-user", strings.NewReader("x"), "multipart/form-data", map[string]string{"Accept": "application/json"})
		}, 400, "bad_request"},
		{"invalid_bound_args", func() (*http.Response, []byte) {
			return send(t, st, "update-user", url.Values{"name": {"x"}, "_bound": {"forged"}}, nil)
		}, 400, "invalid_bound_args"},
		{"unauthenticated", func() (*http.Response, []byte) { return send(t, st, "private", url.Values{"note": {"x"}}, nil) }, 401, "unauthenticated"},
		{"forbidden_origin", func() (*http.Response, []byte) {
			return send(t, st, "create-user", valid, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
		}, 403, "forbidden_origin"},
		{"forbidden", func() (*http.Response, []byte) {
			return teststack.Post(t, st.APIURL+"/admin/bind", strings.NewReader("{}"), "application/json", map[string]string{"Accept": "application/json", "Authorization": "Bearer wrong"})
		}, 403, "forbidden"},
		{"submission_not_found", func() (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodGet, st.APIURL+"/submissions/01NOSUCHSUBMISSION000000000", nil)
			req.Header.Set("Accept", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, b
		}, 404, "submission_not_found"},
		{"action_not_found", func() (*http.Response, []byte) { return send(t, st, "no-such-action", valid, nil) }, 404, "action_not_found"},
		{"payload_too_large: declared length", func() (*http.Response, []byte) {
			return send(t, st, "tiny", url.Values{"text": {strings.Repeat("x", 2000)}}, nil)
		}, 413, "payload_too_large"},
		{"payload_too_large: chunked", func() (*http.Response, []byte) {
			// An io.Reader of unknown length is sent chunked.
			body := io.MultiReader(strings.NewReader("text="), strings.NewReader(strings.Repeat("y", 5000)))
			return teststack.Post(t, st.APIURL+"/actions/tiny", body, "application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
		}, 413, "payload_too_large"},
		{"unsupported_media_type", func() (*http.Response, []byte) {
			return teststack.Post(t, st.APIURL+"/actions/create-user", strings.NewReader(`{"name":"Ada"}`), "application/json", map[string]string{"Accept": "application/json"})
		}, 415, "unsupported_media_type"},
		{"validation_failed", func() (*http.Response, []byte) { return send(t, st, "create-user", url.Values{"name": {"A"}}, nil) }, 422, "validation_failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := tc.do()
			wantCode(t, resp, raw, tc.status, tc.code)
		})
	}
	t.Run("rate_limited", func(t *testing.T) {
		ok := url.Values{"name": {"Ada"}, "email": {"a@example.com"}, "agree": {"on"}, "password": {"longenough"}}
		var resp *http.Response
		var raw []byte
		for range 4 {
			resp, raw = send(t, st, "signup", ok, nil)
		}
		wantCode(t, resp, raw, 429, "rate_limited")
	})
	// Nothing refused above left a job or a file.
	if keys, _ := st.RDB.Keys(context.Background(), "asynq:{*}:t:*").Result(); len(keys) != 3 {
		t.Errorf("want only the 3 accepted signups queued, got %d: %v", len(keys), keys)
	}
	if objs, _ := st.Store.List(context.Background(), "uploads/"); len(objs) != 0 {
		t.Errorf("refused submissions left files: %v", objs)
	}
}

// TestUnavailable: with S3 or Redis down the answer is 503 with
// Retry-After, and nothing is accepted.
func TestUnavailable(t *testing.T) {
	list, err := actions.LoadFile("../testdata/actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := seal.New("a-test-secret-that-is-at-least-32-chars")
	down := "http://127.0.0.1:1" // nothing listens on port 1
	store, err := uploads.NewStore(context.Background(), uploads.Config{Endpoint: down, Region: "us-east-1", Bucket: "b", AccessKey: "k", SecretKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond})
	defer client.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	downRedis := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer downRedis.Close()
	e := echo.New()
	reg := actions.NewRegistry(list...)
	pg, _ := pages.New(pages.Config{}, pages.Deps{Actions: reg, Sealer: sealer, Log: log})
	e.HTTPErrorHandler = web.ErrorHandler(log, pg)
	sub, err := submit.New(submit.Config{}, submit.Deps{Actions: reg, Files: store, Queue: jobs.NewEnqueuer(client, jobs.NewStatusStore(downRedis), log), Log: log, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	if err := routes.Register(e, routes.Parts{Submit: sub, Pages: pg}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	defer srv.Close()

	withFile, ctype := teststack.MultipartBody(t, map[string]string{"name": "Ada", "email": "a@example.com"}, map[string][]byte{"avatar": pngBytes(t)})
	for name, do := range map[string]func() (*http.Response, []byte){
		"S3 down": func() (*http.Response, []byte) {
			return teststack.Post(t, srv.URL+"/actions/create-user", withFile, ctype, map[string]string{"Accept": "application/json"})
		},
		"Redis down": func() (*http.Response, []byte) {
			return teststack.Post(t, srv.URL+"/actions/create-user", strings.NewReader("name=Ada&email=a%40example.com"), "application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			resp, raw := do()
			wantCode(t, resp, raw, 503, "unavailable")
			if resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		})
	}
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/avatar.png")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNoJavaScriptFlow is what a browser without JavaScript sees: a 422
// page with the form re-rendered (messages, kept values, no password), and
// a 303 to the declared redirect on success.
func TestNoJavaScriptFlow(t *testing.T) {
	st := startActions(t, nil)
	browser := map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
	form := url.Values{"name": {"Ada"}, "email": {"not-an-email"}, "agree": {"on"}, "password": {"s3cret-pass"}, "age": {"12"}, "tags": {"a", "c"}}
	resp, raw := teststack.Post(t, st.APIURL+"/actions/signup", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", browser)
	page := string(raw)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		"Email must be a valid email address", "Age must be at least 13",
		`value="Ada"`, `value="not-an-email"`, `aria-invalid="true"`, `aria-describedby="f-email-error"`,
		`<option value="a" selected>`, `<option value="c" selected>`, `name="_idempotency"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("422 page lacks %q", want)
		}
	}
	// The summary lists problems in the form's order: name, email, ..., age.
	if i, j := strings.Index(page, `<li><a href="#f-email">`), strings.Index(page, `<li><a href="#f-age">`); i < 0 || j < 0 || i > j {
		t.Errorf("error summary not in form order (email at %d, age at %d)", i, j)
	}
	if strings.Contains(page, "s3cret-pass") {
		t.Error("the password was echoed")
	}

	body, ctype := teststack.MultipartBody(t, map[string]string{"name": "A", "email": "a@example.com"}, nil)
	resp, raw = teststack.Post(t, st.APIURL+"/actions/create-user", body, ctype, browser)
	if resp.StatusCode != 422 || !strings.Contains(string(raw), "Name must be at least 2 characters") || !strings.Contains(string(raw), `value="A"`) {
		t.Fatalf("multipart 422: %d %s", resp.StatusCode, raw)
	}

	body, ctype = teststack.MultipartBody(t, map[string]string{"name": "Ada", "email": "a@example.com"}, nil)
	resp, _ = teststack.Post(t, st.APIURL+"/actions/create-user", body, ctype, browser)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !regexp.MustCompile(`^`+regexp.QuoteMeta(st.APIURL)+`/users/new\?created=[0-9A-Z]{26}$`).MatchString(loc) {
		t.Fatalf("success: %d Location %q", resp.StatusCode, loc)
	}
	// Other errors: a small HTML page with the status and message.
	resp, raw = teststack.Post(t, st.APIURL+"/actions/nope", strings.NewReader("a=b"), "application/x-www-form-urlencoded", browser)
	if resp.StatusCode != 404 || !strings.Contains(string(raw), "No such action.") || !strings.Contains(string(raw), "<html") {
		t.Fatalf("error page: %d %s", resp.StatusCode, raw)
	}
}

func TestHostedForm(t *testing.T) {
	st := startActions(t, nil)
	get := func(path string) (int, string) {
		resp, err := http.Get(st.APIURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, page := get("/forms/create-user")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`<form method="post" action="/actions/create-user" enctype="multipart/form-data"`,
		`<label for="f-name">Name`, `id="f-name" name="name"`, `required aria-required="true"`, `autocomplete="name"`,
		`type="email" id="f-email"`, `autocomplete="email"`, `type="file" id="f-avatar" name="avatar"`,
		`accept="image/jpeg,image/png,image/webp"`, `name="_gotcha"`, `minlength="2"`, `maxlength="100"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("form lacks %q", want)
		}
	}
	key := regexp.MustCompile(`name="_idempotency" value="([^"]+)"`)
	m1 := key.FindStringSubmatch(page)
	_, page2 := get("/forms/create-user")
	m2 := key.FindStringSubmatch(page2)
	if m1 == nil || m2 == nil || m1[1] == m2[1] {
		t.Fatalf("each render needs a fresh idempotency key: %v %v", m1, m2)
	}
	_, ans := send(t, st, "create-user", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}}, nil)
	id := submissionID(t, ans)
	done := doneURL(t, "create-user", ans)
	if code, _ = get("/forms/create-user/done?submission=" + id); code != 404 {
		t.Fatalf("done page without the capability: %d, want 404 as for an unknown id", code)
	}
	code, page = get(done)
	if code != 200 || !strings.Contains(page, "User created!") || !strings.Contains(page, id) {
		t.Fatalf("done page %d %s", code, page)
	}
	if code, _ = get("/forms/create-user/done?submission=01ABC"); code != 404 {
		t.Fatalf("done page of an unknown submission: %d", code)
	}
	code, page = get("/forms/custom")
	if code != 200 || !strings.Contains(page, `class="custom-template"`) {
		t.Fatalf("per-action template not used: %d %s", code, page)
	}
	resp, raw := teststack.Post(t, st.APIURL+"/actions/custom", strings.NewReader("topic="), "application/x-www-form-urlencoded", nil)
	if resp.StatusCode != 422 || !strings.Contains(string(raw), `class="custom-template"`) || !strings.Contains(string(raw), "Pick a topic") {
		t.Fatalf("422 must re-render the custom template: %d %s", resp.StatusCode, raw)
	}
	if code, _ := get("/forms/nope"); code != 404 {
		t.Fatalf("unknown form: %d", code)
	}

	// A double-clicked hosted form: two posts with the embedded key make
	// one submission.
	var locs []string
	for range 2 {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		w.WriteField("_idempotency", m1[1])
		w.WriteField("name", "Ada")
		w.WriteField("email", "ada@example.com")
		w.Close()
		resp, _ := teststack.Post(t, st.APIURL+"/actions/create-user", &buf, w.FormDataContentType(), nil)
		locs = append(locs, resp.Header.Get("Location"))
	}
	if locs[0] == "" || locs[0] != locs[1] {
		t.Fatalf("double submit made two submissions: %v", locs)
	}
}

// TestBadInput sends what broken or hostile clients send.
func TestBadInput(t *testing.T) {
	st := startActions(t, nil)
	json := map[string]string{"Accept": "application/json"}
	t.Run("thousands of urlencoded fields", func(t *testing.T) {
		var b strings.Builder
		for i := range 5000 {
			fmt.Fprintf(&b, "f%d=x&", i)
		}
		resp, raw := teststack.Post(t, st.APIURL+"/actions/signup", strings.NewReader(b.String()), "application/x-www-form-urlencoded", json)
		wantCode(t, resp, raw, 400, "bad_request")
	})
	t.Run("thousands of multipart parts", func(t *testing.T) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for i := range 3000 {
			w.WriteField(fmt.Sprintf("f%d", i), "")
		}
		w.Close()
		resp, raw := teststack.Post(t, st.APIURL+"/actions/signup", &buf, w.FormDataContentType(), json)
		wantCode(t, resp, raw, 400, "bad_request")
	})
	t.Run("oversized value", func(t *testing.T) {
		body, ctype := teststack.MultipartBody(t, map[string]string{"bio": strings.Repeat("b", 2<<20)}, nil)
		resp, raw := teststack.Post(t, st.APIURL+"/actions/signup", body, ctype, json)
		wantCode(t, resp, raw, 400, "bad_request")
	})
	t.Run("invalid utf-8", func(t *testing.T) {
		resp, raw := teststack.Post(t, st.APIURL+"/actions/create-user", strings.NewReader("name=A%FFda&email=a%40example.com"), "application/x-www-form-urlencoded", json)
		e := wantCode(t, resp, raw, 422, "validation_failed")
		if len(e.Errors["name"]) == 0 {
			t.Fatalf("errors %v", e.Errors)
		}
	})
	t.Run("duplicate single-value field", func(t *testing.T) {
		resp, raw := send(t, st, "create-user", url.Values{"name": {"Ada", "Bob"}, "email": {"a@example.com"}}, nil)
		e := wantCode(t, resp, raw, 422, "validation_failed")
		if e.Errors["name"][0] != "Name was sent more than once" {
			t.Fatalf("errors %v", e.Errors)
		}
	})
	t.Run("broken percent encoding", func(t *testing.T) {
		resp, raw := teststack.Post(t, st.APIURL+"/actions/create-user", strings.NewReader("name=%zz"), "application/x-www-form-urlencoded", json)
		wantCode(t, resp, raw, 400, "bad_request")
	})
	t.Run("part without a name", func(t *testing.T) {
		body := "--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--\r\n"
		resp, raw := teststack.Post(t, st.APIURL+"/actions/create-user", strings.NewReader(body), "multipart/form-data; boundary=B", json)
		wantCode(t, resp, raw, 400, "bad_request")
	})
	t.Run("unknown fields are ignored, not stored", func(t *testing.T) {
		resp, raw := send(t, st, "create-user", url.Values{"name": {"Ada"}, "email": {"a@example.com"}, "isAdmin": {"true"}}, nil)
		if resp.StatusCode != 202 {
			t.Fatalf("%d %s", resp.StatusCode, raw)
		}
		rec := waitRecord(t, st, "create-user", submissionID(t, raw))
		if _, ok := rec["values"].(map[string]any)["isAdmin"]; ok {
			t.Fatalf("unknown field stored: %v", rec["values"])
		}
	})
}
