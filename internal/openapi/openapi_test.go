package openapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions/routes"
	"github.com/formq/formq/internal/openapi"
	"github.com/formq/formq/internal/teststack"
	"github.com/labstack/echo/v4"
	"github.com/oklog/ulid/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// docURL names the document for the schema compiler; response schemas are
// compiled as JSON pointers into it, so their $refs resolve to components.
const docURL = "https://formq.invalid/openapi.json"

// apiDoc is the document, ready to check answers against.
type apiDoc struct {
	root     map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
	checked  map[string]bool // "METHOD path status" answers seen
}

func loadDoc(t *testing.T) *apiDoc {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(openapi.Document))
	if err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	root, ok := v.(map[string]any)
	if !ok || root["openapi"] != "3.1.0" {
		t.Fatalf("not an OpenAPI 3.1.0 document")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, v); err != nil {
		t.Fatal(err)
	}
	return &apiDoc{root: root, compiler: c, schemas: map[string]*jsonschema.Schema{}, checked: map[string]bool{}}
}

// esc is one JSON-pointer token in a URL fragment.
func esc(token string) string {
	return url.PathEscape(strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1"))
}

// at follows a JSON pointer (unescaped tokens) from the root.
func (d *apiDoc) at(tokens ...string) (any, bool) {
	var v any = d.root
	for _, tok := range tokens {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return v, true
}

// deref follows a local $ref to its tokens and object.
func (d *apiDoc) deref(t *testing.T, tokens []string) ([]string, map[string]any) {
	t.Helper()
	for range 5 {
		v, ok := d.at(tokens...)
		m, isMap := v.(map[string]any)
		if !ok || !isMap {
			t.Fatalf("the document has nothing at /%s", strings.Join(tokens, "/"))
		}
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return tokens, m
		}
		tokens = strings.Split(strings.TrimPrefix(ref, "#/"), "/")
	}
	t.Fatalf("$ref loop at /%s", strings.Join(tokens, "/"))
	return nil, nil
}

func (d *apiDoc) schema(t *testing.T, tokens []string) *jsonschema.Schema {
	t.Helper()
	var b strings.Builder
	b.WriteString(docURL + "#")
	for _, tok := range tokens {
		b.WriteString("/" + esc(tok))
	}
	loc := b.String()
	if s, ok := d.schemas[loc]; ok {
		return s
	}
	s, err := d.compiler.Compile(loc)
	if err != nil {
		t.Fatalf("compile %s: %v", loc, err)
	}
	d.schemas[loc] = s
	return s
}

// response is the documented response of an operation for a status, with
// its JSON pointer. The status must be documented explicitly.
func (d *apiDoc) response(t *testing.T, method, path string, status int) ([]string, map[string]any) {
	t.Helper()
	op := []string{"paths", path, strings.ToLower(method)}
	if _, ok := d.at(op...); !ok {
		t.Fatalf("%s %s is not in the document", method, path)
	}
	code := strconv.Itoa(status)
	if _, ok := d.at(append(op, "responses", code)...); !ok {
		t.Fatalf("%s %s answered %d, which the document does not list", method, path, status)
	}
	return d.deref(t, append(op, "responses", code))
}

// check holds one real answer to the document: its status is listed, its
// media type is one the response has, its required headers are there and
// a JSON body passes the response's schema.
func (d *apiDoc) check(t *testing.T, method, path string, resp *http.Response, body []byte) {
	t.Helper()
	tokens, r := d.response(t, method, path, resp.StatusCode)
	headers, _ := r["headers"].(map[string]any)
	for name := range headers {
		_, h := d.deref(t, append(slices.Clone(tokens), "headers", name))
		if h["required"] == true && resp.Header.Get(name) == "" {
			t.Errorf("%s %s %d: no %s header", method, path, resp.StatusCode, name)
		}
	}
	content, _ := r["content"].(map[string]any)
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case content == nil && len(body) > 0:
		t.Errorf("%s %s %d: a %s body where the document has none", method, path, resp.StatusCode, mt)
	case content == nil:
	case content[mt] == nil:
		t.Errorf("%s %s %d: Content-Type %q, the document has %v", method, path, resp.StatusCode, mt, keys(content))
	case mt == "application/json":
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s %s %d: not JSON: %v\n%s", method, path, resp.StatusCode, err, body)
		}
		if err := d.schema(t, append(slices.Clone(tokens), "content", mt, "schema")).Validate(v); err != nil {
			t.Errorf("%s %s %d: the answer does not match the document: %v\n%s", method, path, resp.StatusCode, err, body)
		}
	case len(body) == 0 && method != http.MethodHead:
		t.Errorf("%s %s %d: empty %s body", method, path, resp.StatusCode, mt)
	}
	d.checked[fmt.Sprintf("%s %s %d", method, path, resp.StatusCode)] = true
}

// checkEvent holds one server-sent event's data to the x-data-schema of
// the stream's 200 answer.
func (d *apiDoc) checkEvent(t *testing.T, path, data string) {
	t.Helper()
	tokens, _ := d.response(t, http.MethodGet, path, http.StatusOK)
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(data))
	if err != nil {
		t.Fatalf("%s: event data is not JSON: %v\n%s", path, err, data)
	}
	if err := d.schema(t, append(slices.Clone(tokens), "content", "text/event-stream", "x-data-schema")).Validate(v); err != nil {
		t.Errorf("%s: event data does not match the document: %v\n%s", path, err, data)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// request describes one call to the stack.
type request struct {
	method, path, doc string // doc: the path as the document names it
	query             string
	body              io.Reader
	contentType       string
	header            map[string]string
	want              int
}

var client = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// call sends a request, requires its status and checks the answer against
// the document.
func (d *apiDoc) call(t *testing.T, base string, r request) []byte {
	t.Helper()
	u := base + r.path
	if r.query != "" {
		u += "?" + r.query
	}
	req, err := http.NewRequest(r.method, u, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != r.want {
		t.Fatalf("%s %s: status %d, want %d:\n%s", r.method, u, resp.StatusCode, r.want, body)
	}
	d.check(t, r.method, r.doc, resp, body)
	return body
}

// firstEvent reads a server-sent-events stream until its first data line.
func firstEvent(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			return resp, data
		}
	}
	t.Fatalf("%s: the stream ended without data (%v)", url, sc.Err())
	return nil, ""
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const (
	adminToken = "openapi-test-admin-token"
	authSecret = "openapi-test-hs256-secret-of-32-bytes!"
)

// TestAnswersMatchTheDocument makes real requests to a stack on real Redis
// and S3, one for each answer the document lists that a test can reach,
// and holds every answer to the document.
func TestAnswersMatchTheDocument(t *testing.T) {
	d := loadDoc(t)
	actionsFile, err := filepath.Abs("testdata/actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := teststack.Start(t, map[string]string{
		"FORMQ_ACTIONS": actionsFile, "FORMQ_ADMIN_TOKEN": adminToken, "FORMQ_AUTH_HS256_SECRET": authSecret,
	})
	api := st.APIURL
	form := "application/x-www-form-urlencoded"
	valid := "name=Ada&email=ada%40example.com&tags=a&tags=b&password=secret"
	pic := pngBytes(t)

	t.Run("operations", func(t *testing.T) {
		d.call(t, api, request{method: "GET", path: "/healthz", doc: "/healthz", want: 200})
		d.call(t, api, request{method: "GET", path: "/readyz", doc: "/readyz", want: 200})
		d.call(t, api, request{method: "GET", path: "/metrics", doc: "/metrics", want: 200})
		if body := d.call(t, api, request{method: "GET", path: "/openapi.json", doc: "/openapi.json", want: 200}); !bytes.Equal(body, openapi.Document) {
			t.Errorf("GET /openapi.json is not the document")
		}
		resp, err := client.Get(api + "/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		d.call(t, api, request{method: "GET", path: "/openapi.json", doc: "/openapi.json", header: map[string]string{"If-None-Match": resp.Header.Get("ETag")}, want: 304})
	})

	t.Run("forms", func(t *testing.T) {
		html := map[string]string{"Accept": "text/html"}
		d.call(t, api, request{method: "GET", path: "/forms/contact", doc: "/forms/{name}", header: html, want: 200})
		d.call(t, api, request{method: "GET", path: "/forms/nope", doc: "/forms/{name}", want: 404})
		d.call(t, api, request{method: "GET", path: "/forms/nope", doc: "/forms/{name}", header: html, want: 404})
		d.call(t, api, request{method: "GET", path: "/forms/contact/done", query: "submission=01ABC", doc: "/forms/{name}/done", header: html, want: 404})
		d.call(t, api, request{method: "GET", path: "/actions/contact/schema", doc: "/actions/{name}/schema", want: 200})
		d.call(t, api, request{method: "GET", path: "/actions/contact/schema", doc: "/actions/{name}/schema", header: map[string]string{"Origin": "https://elsewhere.example"}, want: 200})
		d.call(t, api, request{method: "GET", path: "/actions/nope/schema", doc: "/actions/{name}/schema", want: 404})
		d.call(t, api, request{method: "GET", path: "/actions/contact/schema.json", doc: "/actions/{name}/schema.json", want: 200})
		d.call(t, api, request{method: "GET", path: "/actions/nope/schema.json", doc: "/actions/{name}/schema.json", want: 404})
		d.call(t, api, request{method: "GET", path: "/actions/contact/stamp", doc: "/actions/{name}/stamp", want: 200})
		d.call(t, api, request{method: "GET", path: "/actions/nope/stamp", doc: "/actions/{name}/stamp", want: 404})
		d.call(t, api, request{method: "GET", path: "/actions/contact/state/not-a-token", doc: "/actions/{name}/state/{token}", want: 400})
		// A browser's failed post with an error redirect, read back.
		req, _ := http.NewRequest(http.MethodPost, api+"/actions/contact", strings.NewReader("name=A&_error_redirect=%2Fback"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		back, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || err != nil || back.Query().Get("formq_state") == "" {
			t.Fatalf("error redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		d.call(t, api, request{method: "GET", path: "/actions/contact/state/" + back.Query().Get("formq_state"), doc: "/actions/{name}/state/{token}", want: 200})
		d.call(t, api, request{method: "GET", path: "/actions/nope/state/x", doc: "/actions/{name}/state/{token}", want: 404})
		d.call(t, api, request{method: "GET", path: "/formq.js", doc: "/formq.js", want: 200})
		d.call(t, api, request{method: "GET", path: "/forms/nope/done", doc: "/forms/{name}/done", want: 404})
	})

	var accepted struct {
		Submission struct {
			ID        string `json:"id"`
			StatusURL string `json:"statusUrl"`
		} `json:"submission"`
	}
	t.Run("submit", func(t *testing.T) {
		submit := func(action string, r request) []byte {
			r.method, r.path, r.doc = "POST", "/actions/"+action, "/actions/{name}"
			return d.call(t, api, r)
		}
		body := submit("contact", request{body: strings.NewReader(valid), contentType: form, want: 202})
		if err := json.Unmarshal(body, &accepted); err != nil || accepted.Submission.ID == "" {
			t.Fatalf("no submission id in %s", body)
		}
		mp, ctype := teststack.MultipartBody(t, map[string]string{"name": "Ada", "email": "ada@example.com"}, map[string][]byte{"picture": pic})
		submit("contact", request{body: mp, contentType: ctype, want: 202})
		// A repeated idempotency key: the first answer, replayed.
		idem := map[string]string{"Idempotency-Key": "openapi-test-key"}
		first := submit("contact", request{body: strings.NewReader(valid), contentType: form, header: idem, want: 202})
		again := submit("contact", request{body: strings.NewReader(valid), contentType: form, header: idem, want: 202})
		if !bytes.Equal(first, again) {
			t.Errorf("a replay differs from the first answer:\n%s\n%s", first, again)
		}
		// A filled honeypot looks like a success.
		submit("contact", request{body: strings.NewReader(valid + "&_gotcha=spam"), contentType: form, want: 202})
		// Browsers.
		browser := map[string]string{"Accept": "text/html"}
		submit("contact", request{body: strings.NewReader(valid), contentType: form, header: browser, want: 303})
		submit("contact", request{body: strings.NewReader("name=A&tags=a&tags=b"), contentType: form, header: browser, want: 422})
		// Refusals.
		submit("contact", request{body: strings.NewReader("name=A&email=nope&tags=a&tags=c&password=x"), contentType: form, want: 422})
		bad, bctype := teststack.MultipartBody(t, map[string]string{"name": "Ada", "email": "ada@example.com"}, map[string][]byte{"picture": []byte("not a picture")})
		submit("contact", request{body: bad, contentType: bctype, want: 422})
		// A picture sent with a field that fails is kept: "kept" in the 422.
		keptBody, kctype := teststack.MultipartBody(t, map[string]string{"name": "A", "email": "ada@example.com"}, map[string][]byte{"picture": pic})
		if body := submit("contact", request{body: keptBody, contentType: kctype, want: 422}); !strings.Contains(string(body), `"kept":{"picture":[{"ref":`) {
			t.Errorf("no kept picture in %s", body)
		}
		submit("nope", request{body: strings.NewReader(valid), contentType: form, want: 404})
		submit("contact", request{body: strings.NewReader(valid), contentType: "text/plain", want: 415})
		submit("contact", request{body: strings.NewReader(valid), contentType: "multipart/form-data", want: 400})
		submit("contact", request{body: strings.NewReader(strings.Repeat("x", 2<<20)), contentType: form, want: 413})
		submit("contact", request{body: strings.NewReader(valid), contentType: form, header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, want: 403})
		submit("private", request{body: strings.NewReader("name=x"), contentType: form, want: 401})
		submit("bound", request{body: strings.NewReader("name=x&_bound=forged"), contentType: form, want: 400})
		submit("limited", request{body: strings.NewReader("name=x"), contentType: form, want: 202})
		submit("limited", request{body: strings.NewReader("name=x"), contentType: form, want: 429})
	})

	t.Run("submissions", func(t *testing.T) {
		id := accepted.Submission.ID
		var status struct {
			Submission struct{ Status, Event string } `json:"submission"`
		}
		teststack.WaitFor(t, 30*time.Second, "the submission to complete", func() bool {
			body := d.call(t, api, request{method: "GET", path: strings.TrimPrefix(accepted.Submission.StatusURL, api), doc: "/submissions/{id}", want: 200})
			return json.Unmarshal(body, &status) == nil && status.Submission.Status == "completed" && status.Submission.Event != ""
		})
		su, err := url.Parse(accepted.Submission.StatusURL)
		if err != nil || su.Query().Get("t") == "" {
			t.Fatalf("statusUrl %q carries no capability", accepted.Submission.StatusURL)
		}
		// The done page needs the same capability as the statusUrl.
		d.call(t, api, request{method: "GET", path: "/forms/contact/done", query: "submission=" + id, doc: "/forms/{name}/done", header: map[string]string{"Accept": "text/html"}, want: 404})
		d.call(t, api, request{method: "GET", path: "/forms/contact/done", query: "submission=" + id + "&t=" + url.QueryEscape(su.Query().Get("t")), doc: "/forms/{name}/done", header: map[string]string{"Accept": "text/html"}, want: 200})
		d.call(t, api, request{method: "GET", path: "/submissions/01NOSUCHSUBMISSION", doc: "/submissions/{id}", want: 404})
		d.call(t, api, request{method: "GET", path: "/submissions/01NOSUCHSUBMISSION/events", doc: "/submissions/{id}/events", want: 404})

		d.call(t, api, request{method: "GET", path: "/submissions/" + id, doc: "/submissions/{id}", want: 404}) // no capability
		admin := map[string]string{"Authorization": "Bearer " + adminToken}
		d.call(t, api, request{method: "GET", path: "/submissions/" + id, doc: "/submissions/{id}", header: admin, want: 200})
		resp, data := firstEvent(t, strings.Replace(accepted.Submission.StatusURL, "?", "/events?", 1), nil)
		d.check(t, "GET", "/submissions/{id}/events", resp, []byte(data))
		d.checkEvent(t, "/submissions/{id}/events", data)

		// The submission's revalidation event, replayed from the start.
		resp, data = firstEvent(t, api+"/events?tag=contacts", map[string]string{"Last-Event-ID": "0-0", "Authorization": "Bearer " + adminToken})
		d.check(t, "GET", "/events", resp, []byte(data))
		d.checkEvent(t, "/events", data)
		d.call(t, api, request{method: "GET", path: "/events", doc: "/events", header: map[string]string{"Last-Event-ID": "yesterday"}, want: 400})
		d.call(t, api, request{method: "GET", path: "/events", doc: "/events", header: map[string]string{"Authorization": "Bearer wrong"}, want: 403})
		d.call(t, api, request{method: "GET", path: "/events", doc: "/events", header: map[string]string{"Authorization": "Basic x"}, want: 401})
	})

	t.Run("uploads", func(t *testing.T) {
		up := func(query string, body io.Reader, ctype string, want int) []byte {
			return d.call(t, api, request{method: "POST", path: "/uploads", doc: "/uploads", query: query, body: body, contentType: ctype, want: want})
		}
		mp, ctype := teststack.MultipartBody(t, nil, map[string][]byte{"file": pic})
		up("profile=pictures", mp, ctype, 201)
		mp, ctype = teststack.MultipartBody(t, nil, map[string][]byte{"file": pic})
		up("action=contact&field=picture", mp, ctype, 201)
		mp, ctype = teststack.MultipartBody(t, nil, map[string][]byte{"file": []byte("plain text, not a picture")})
		up("profile=pictures", mp, ctype, 422)
		mp, ctype = teststack.MultipartBody(t, map[string]string{"note": "no file"}, nil)
		up("profile=pictures", mp, ctype, 422)
		up("profile=nope", strings.NewReader(""), "multipart/form-data; boundary=x", 404)
		up("action=nope&field=picture", strings.NewReader(""), "multipart/form-data; boundary=x", 404)
		up("", strings.NewReader(""), "multipart/form-data; boundary=x", 400)
		up("profile=pictures", strings.NewReader("x"), "text/plain", 415)
		up("profile=pictures", strings.NewReader(strings.Repeat("x", 2<<20)), "multipart/form-data; boundary=x", 413)

		presign := func(body string, want int) {
			d.call(t, api, request{method: "POST", path: "/uploads/presign", doc: "/uploads/presign", body: strings.NewReader(body), contentType: "application/json", want: want})
		}
		presign(`{"profile": "pictures", "contentType": "image/png", "filename": "me.png"}`, 201)
		presign(`{"action": "contact", "field": "picture", "contentType": "image/png"}`, 201)
		presign(`{"profile": "pictures", "contentType": "text/plain"}`, 422)
		presign(`{"profile": "pictures"}`, 422)
		presign(`{"profile": "nope", "contentType": "image/png"}`, 404)
		presign(`{"contentType": "image/png"}`, 400)
		presign(`not json`, 400)
		presign(`{"profile": "members", "contentType": "image/png"}`, 401)
		presign(`{"profile": "rationed", "contentType": "image/png"}`, 201)
		presign(`{"profile": "rationed", "contentType": "image/png"}`, 429)
		mp, ctype = teststack.MultipartBody(t, nil, map[string][]byte{"file": pic})
		up("profile=members", mp, ctype, 401)
		d.call(t, api, request{method: "POST", path: "/uploads", doc: "/uploads", query: "profile=pictures", body: strings.NewReader(""),
			contentType: "multipart/form-data; boundary=x", header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, want: 403})
	})

	t.Run("resumable uploads", func(t *testing.T) {
		tus := func(method, path, query string, body io.Reader, header map[string]string, want int) *http.Response {
			t.Helper()
			h := map[string]string{"Tus-Resumable": "1.0.0"}
			for k, v := range header {
				h[k] = v
			}
			doc := "/uploads/tus/"
			if path != doc {
				doc = "/uploads/tus/{id}"
			}
			u := api + path
			if query != "" {
				u += "?" + query
			}
			req, err := http.NewRequest(method, u, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "application/json")
			for k, v := range h {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != want {
				t.Fatalf("%s %s: status %d, want %d: %s", method, u, resp.StatusCode, want, raw)
			}
			d.check(t, method, doc, resp, raw)
			return resp
		}
		size := map[string]string{"Upload-Length": strconv.Itoa(len(pic))}
		create := func(query string, header map[string]string, want int) *http.Response {
			t.Helper()
			return tus("POST", "/uploads/tus/", query, nil, header, want)
		}
		resp := create("profile=clips", size, 201)
		upload, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || upload.Path == "" {
			t.Fatalf("Location %q", resp.Header.Get("Location"))
		}
		create("profile=clips", map[string]string{"Upload-Length": strconv.Itoa(len(pic)), "Tus-Resumable": ""}, 412)
		create("profile=pictures", size, 404)
		create("profile=clips", map[string]string{"Upload-Length": strconv.Itoa(1 << 20)}, 413)
		create("", size, 400)
		create("profile=clips", size, 201)
		octets := map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
		tus("HEAD", upload.Path, "", nil, nil, 200)
		tus("PATCH", upload.Path, "", bytes.NewReader(pic[:10]), map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "5"}, 409)
		tus("PATCH", upload.Path, "", bytes.NewReader(pic[:10]), map[string]string{"Content-Type": "text/plain", "Upload-Offset": "0"}, 400)
		tus("PATCH", upload.Path, "", bytes.NewReader(pic[:10]), octets, 204)
		rest := map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "10"}
		if resp := tus("PATCH", upload.Path, "", bytes.NewReader(pic[10:]), rest, 200); resp.Header.Get("Formq-Upload-Ref") == "" {
			t.Errorf("the completing PATCH answered no Formq-Upload-Ref")
		}
		tus("PATCH", "/uploads/tus/not-an-upload", "", strings.NewReader("x"), octets, 404)
		none := "/uploads/tus/" + ulid.Make().String() + "+none"
		tus("PATCH", none, "", strings.NewReader("x"), octets, 404)
		tus("HEAD", none, "", nil, nil, 404)
		// Made in 2016: long expired.
		tus("PATCH", "/uploads/tus/01ARZ3NDEKTSV4RRFFQ69G5FAV+old", "", strings.NewReader("x"), octets, 410)
		text := []byte("plain text, not a picture")
		resp = create("profile=clips", map[string]string{"Upload-Length": strconv.Itoa(len(text))}, 201)
		wrong, _ := url.Parse(resp.Header.Get("Location"))
		tus("PATCH", wrong.Path, "", bytes.NewReader(text), octets, 422)

		// Discovery, expiry on HEAD, termination.
		for _, path := range []string{"/uploads/tus/", upload.Path} {
			if resp := tus("OPTIONS", path, "", nil, nil, 200); resp.Header.Get("Tus-Max-Size") == "" {
				t.Errorf("OPTIONS %s answered no Tus-Max-Size", path)
			}
		}
		tus("HEAD", "/uploads/tus/01ARZ3NDEKTSV4RRFFQ69G5FAV+old", "", nil, nil, 410)
		tus("DELETE", upload.Path, "", nil, nil, 409) // finished: its reference is out
		resp = create("profile=clips", size, 201)
		cancel, _ := url.Parse(resp.Header.Get("Location"))
		tus("PATCH", cancel.Path, "", bytes.NewReader(pic[:10]), octets, 204)
		tus("DELETE", cancel.Path, "", nil, map[string]string{"Tus-Resumable": ""}, 412)
		tus("DELETE", cancel.Path, "", nil, nil, 204)
		tus("DELETE", cancel.Path, "", nil, nil, 404)
		tus("HEAD", cancel.Path, "", nil, nil, 404)
	})

	t.Run("admin", func(t *testing.T) {
		bearer := map[string]string{"Authorization": "Bearer " + adminToken}
		bind := func(body string, header map[string]string, want int) {
			d.call(t, api, request{method: "POST", path: "/admin/bind", doc: "/admin/bind", body: strings.NewReader(body), contentType: "application/json", header: header, want: want})
		}
		bind(`{"action": "bound", "args": {"org": "acme"}, "ttl": "1h"}`, bearer, 200)
		bind(`{"action": "bound", "args": {"org": "acme"}, "colour": "red"}`, bearer, 400)
		bind(`{"action": "nope", "args": {}}`, bearer, 404)
		bind(`{"action": "bound", "args": {"org": "acme"}}`, nil, 401)
		bind(`{"action": "bound", "args": {"org": "acme"}}`, map[string]string{"Authorization": "Bearer wrong"}, 403)

		// The inbox: the accepted submission is indexed once it is stored.
		inbox := func(method, path, query string, doc string, header map[string]string, want int) []byte {
			return d.call(t, api, request{method: method, path: path, query: query, doc: doc, header: header, want: want})
		}
		id := accepted.Submission.ID
		teststack.WaitFor(t, 30*time.Second, "the submission indexed", func() bool {
			return st.RDB.HExists(context.Background(), "formq:index:ids", id).Val()
		})
		inbox("GET", "/admin/submissions", "action=contact&limit=2", "/admin/submissions", bearer, 200)
		inbox("GET", "/admin/submissions", "status=completed", "/admin/submissions", bearer, 200)
		inbox("GET", "/admin/submissions", "limit=0", "/admin/submissions", bearer, 400)
		inbox("GET", "/admin/submissions", "action=nope", "/admin/submissions", bearer, 404)
		inbox("GET", "/admin/submissions", "", "/admin/submissions", nil, 401)
		inbox("GET", "/admin/submissions/"+id, "", "/admin/submissions/{id}", bearer, 200)
		inbox("GET", "/admin/submissions/01NOSUCHSUBMISSION", "", "/admin/submissions/{id}", bearer, 404)
		inbox("GET", "/admin/submissions/export", "action=contact", "/admin/submissions/export", bearer, 200)
		inbox("GET", "/admin/submissions/export", "action=contact&format=ndjson", "/admin/submissions/export", bearer, 200)
		inbox("GET", "/admin/submissions/export", "action=contact&format=xls", "/admin/submissions/export", bearer, 400)
		inbox("GET", "/admin/submissions/export", "action=nope", "/admin/submissions/export", bearer, 404)
		inbox("DELETE", "/admin/submissions", "action=contact&field=name&value=Ada", "/admin/submissions", bearer, 400)
		inbox("DELETE", "/admin/submissions", "action=nope&field=email&value=x", "/admin/submissions", bearer, 404)
		inbox("DELETE", "/admin/submissions", "action=contact&field=email&value=nobody%40example.com", "/admin/submissions", bearer, 200)
		pageHeader := map[string]string{"Authorization": "Bearer " + adminToken, "Accept": "text/html"}
		inbox("GET", "/admin/inbox", "action=contact", "/admin/inbox", pageHeader, 200)
		inbox("GET", "/admin/inbox", "", "/admin/inbox", nil, 401)
		inbox("GET", "/admin/inbox/"+id, "", "/admin/inbox/{id}", pageHeader, 200)
		inbox("GET", "/admin/inbox/01NOSUCHSUBMISSION", "", "/admin/inbox/{id}", pageHeader, 404)
		inbox("GET", "/admin/inbox/"+id+"/delete", "", "/admin/inbox/{id}/delete", pageHeader, 200)
		inbox("POST", "/admin/inbox/01NOSUCHSUBMISSION/delete", "", "/admin/inbox/{id}/delete", pageHeader, 404)
		teststack.WaitFor(t, 30*time.Second, "the submission done", func() bool {
			return st.RDB.HGet(context.Background(), "formq:submission:"+id, "status").Val() == "completed"
		})
		inbox("POST", "/admin/submissions/"+id+"/redeliver", "", "/admin/submissions/{id}/redeliver", bearer, 422)
		inbox("POST", "/admin/submissions/"+id+"/redeliver", "step=first", "/admin/submissions/{id}/redeliver", bearer, 400)
		inbox("POST", "/admin/submissions/01NOSUCHSUBMISSION/redeliver", "", "/admin/submissions/{id}/redeliver", bearer, 404)
		inbox("POST", "/admin/submissions/"+id+"/redeliver", "", "/admin/submissions/{id}/redeliver", nil, 401)
		inbox("POST", "/admin/inbox/01NOSUCHSUBMISSION/redeliver", "", "/admin/inbox/{id}/redeliver", pageHeader, 404)
		inbox("GET", "/admin/submissions", "folder=spam", "/admin/submissions", bearer, 200)
		inbox("GET", "/admin/submissions", "folder=junk", "/admin/submissions", bearer, 400)
		inbox("POST", "/admin/submissions/"+id+"/release", "", "/admin/submissions/{id}/release", bearer, 409)
		inbox("POST", "/admin/submissions/01NOSUCHSUBMISSION/release", "", "/admin/submissions/{id}/release", bearer, 404)
		inbox("POST", "/admin/submissions/"+id+"/confirm", "", "/admin/submissions/{id}/confirm", bearer, 409)
		inbox("POST", "/admin/submissions/"+id+"/confirm", "", "/admin/submissions/{id}/confirm", nil, 401)
		inbox("POST", "/admin/submissions/"+id+"/mark", "spam=false", "/admin/submissions/{id}/mark", bearer, 200)
		inbox("POST", "/admin/submissions/"+id+"/mark", "spam=maybe", "/admin/submissions/{id}/mark", bearer, 400)
		inbox("POST", "/admin/submissions/01NOSUCHSUBMISSION/mark", "spam=true", "/admin/submissions/{id}/mark", bearer, 404)
		inbox("POST", "/admin/inbox/01NOSUCHSUBMISSION/spam", "do=release", "/admin/inbox/{id}/spam", pageHeader, 404)
		inbox("POST", "/admin/inbox/"+id+"/spam", "do=nothing", "/admin/inbox/{id}/spam", pageHeader, 400)
		inbox("DELETE", "/admin/submissions/"+id, "", "/admin/submissions/{id}", bearer, 200)
		inbox("DELETE", "/admin/submissions/"+id, "", "/admin/submissions/{id}", bearer, 404)
		inbox("DELETE", "/admin/submissions/"+id, "", "/admin/submissions/{id}", map[string]string{"Authorization": "Bearer wrong"}, 403)
		inbox("GET", "/admin/audit", "", "/admin/audit", bearer, 200)
		inbox("GET", "/admin/audit", "limit=2&submission="+id, "/admin/audit", bearer, 200)
		inbox("GET", "/admin/audit", "limit=0", "/admin/audit", bearer, 400)
		inbox("GET", "/admin/audit", "before=nope", "/admin/audit", bearer, 400)
		inbox("GET", "/admin/audit", "", "/admin/audit", nil, 401)
		inbox("GET", "/admin/inbox/audit", "", "/admin/inbox/audit", pageHeader, 200)
		inbox("GET", "/admin/inbox/audit", "limit=x", "/admin/inbox/audit", pageHeader, 400)

		html := map[string]string{"Authorization": "Bearer " + adminToken, "Accept": "text/html"}
		d.call(t, api, request{method: "GET", path: "/admin/queues/", doc: "/admin/queues/{path}", header: html, want: 200})
		d.call(t, api, request{method: "GET", path: "/admin/queues", doc: "/admin/queues", want: 401})
		d.call(t, api, request{method: "GET", path: "/admin/queues/api/queues", doc: "/admin/queues/{path}", header: map[string]string{"Authorization": "Bearer wrong"}, want: 403})
	})

	var seen []string
	for k := range d.checked {
		seen = append(seen, k)
	}
	sort.Strings(seen)
	t.Logf("%d documented answers checked against real ones:\n%s", len(seen), strings.Join(seen, "\n"))
}

// TestAdminRoutesOffAnswer404 checks the admin answers of a stack without
// FORMQ_ADMIN_TOKEN: the routes do not exist.
func TestAdminRoutesOffAnswer404(t *testing.T) {
	d := loadDoc(t)
	st := teststack.Start(t, nil)
	d.call(t, st.APIURL, request{method: "POST", path: "/admin/bind", doc: "/admin/bind", body: strings.NewReader(`{}`), contentType: "application/json", want: 404})
	d.call(t, st.APIURL, request{method: "GET", path: "/admin/queues/", doc: "/admin/queues/{path}", want: 404})
	d.call(t, st.APIURL, request{method: "GET", path: "/admin/signin", doc: "/admin/signin", want: 404})
	d.call(t, st.APIURL, request{method: "GET", path: "/admin/oidc/callback", doc: "/admin/oidc/callback", want: 404})
	d.call(t, st.APIURL, request{method: "POST", path: "/admin/signout", doc: "/admin/signout", want: 404})
}

// TestHandlerServesTheDocument: the document as JSON, with caching headers
// and a 304 for a client that has it.
func TestHandlerServesTheDocument(t *testing.T) {
	srv := httptest.NewServer(openapi.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + openapi.Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, openapi.Document) {
		t.Fatalf("status %d, Content-Type %q, %d bytes; want 200, application/json and the document", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("ETag %q, Cache-Control %q; want both", etag, resp.Header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+openapi.Path, nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: status %d, want 304", resp.StatusCode)
	}
}

// operations are the methods an OpenAPI path item can hold.
var operations = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// docPath is an echo route's path as the document writes it: :name as
// {name}, a trailing * as {path}.
func docPath(route string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, ":"):
			parts[i] = "{" + p[1:] + "}"
		case p == "*":
			parts[i] = "{path}"
		}
	}
	return strings.Join(parts, "/")
}

// TestEveryRouteIsDocumented: every route the API registers is in the
// document, and the document has no route the API lacks, so a new route
// without documentation fails here.
func TestEveryRouteIsDocumented(t *testing.T) {
	d := loadDoc(t)
	e := echo.New()
	if err := routes.Register(e, routes.Parts{}); err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, r := range e.Routes() {
		method := strings.ToLower(r.Method)
		if !slices.Contains(operations, method) {
			continue // echo's not-found routes of groups, and CONNECT, PROPFIND, REPORT of e.Any
		}
		path := docPath(r.Path)
		registered[method+" "+path] = true
		if _, ok := d.at("paths", path, method); !ok {
			t.Errorf("route %s %s is not in openapi.json (as %s %s)", r.Method, r.Path, method, path)
		}
	}
	if len(registered) < 15 {
		t.Fatalf("only %d routes registered: %v", len(registered), registered)
	}
	for path, item := range d.root["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if slices.Contains(operations, method) && !registered[method+" "+path] {
				t.Errorf("openapi.json has %s %s, which the API does not register", method, path)
			}
		}
	}
}

// TestDocumentIsWhole: every $ref resolves, every component schema
// compiles and operation ids are unique.
func TestDocumentIsWhole(t *testing.T) {
	d := loadDoc(t)
	ids := map[string]string{}
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if _, found := d.at(strings.Split(strings.TrimPrefix(ref, "#/"), "/")...); !strings.HasPrefix(ref, "#/") || !found {
					t.Errorf("%s: $ref %s does not resolve", at, ref)
				}
			}
			if id, ok := x["operationId"].(string); ok {
				if prev, dup := ids[id]; dup {
					t.Errorf("operationId %s at %s and %s", id, prev, at)
				}
				ids[id] = at
			}
			for k, e := range x {
				walk(e, at+"/"+k)
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(d.root, "")
	for name := range d.root["components"].(map[string]any)["schemas"].(map[string]any) {
		d.schema(t, []string{"components", "schemas", name})
	}
}

// TestDocumentIsOpenAPI31 checks openapi.json against the JSON Schema of
// OpenAPI 3.1 documents (testdata/oas-3.1-schema.json).
func TestDocumentIsOpenAPI31(t *testing.T) {
	meta, err := os.ReadFile("testdata/oas-3.1-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(meta))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("oas-3.1-schema.json", v); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("oas-3.1-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openapi.Document))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Errorf("openapi.json is not a valid OpenAPI 3.1 document: %v", err)
	}
}
