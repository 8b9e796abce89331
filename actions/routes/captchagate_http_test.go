package routes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/formq/formq/internal/teststack"
)

// val and file are parts of a test body, in the order a browser sends
// them (document order).
func val(name, v string) part { return part{field: name, value: v} }
func file(name string) part   { return part{field: name, filename: name + ".pdf", data: []byte(pdf)} }

// orderedMultipart builds a multipart body with its parts in order.
func orderedMultipart(t *testing.T, parts ...part) (io.Reader, string) {
	t.Helper()
	return form(parts...)
}

// gateActions has a captcha action with a plain and a resumable upload
// field, and a second captcha action.
func gateActions(verifyURL string) string {
	return fmt.Sprintf(`actions:
  apply:
    fields:
      email: {type: email, required: true}
    uploads:
      cv: {max_size: 1MB}
      big: {max_size: 1MB, resumable: true}
    captcha: {provider: turnstile, secret_env: CAPTCHA_SECRET, site_key: turnstile-sitekey, verify_url: "%[1]s"}
  other:
    fields:
      email: {type: email, required: true}
    uploads:
      cv: {max_size: 1MB}
    captcha: {provider: turnstile, secret_env: CAPTCHA_SECRET, site_key: turnstile-sitekey, verify_url: "%[1]s"}
    messages: {captcha_first: "Bitte zuerst die Aufgabe lösen, dann die Dateien senden."}
`, verifyURL)
}

var pdf = strings.Repeat("%PDF-1.4 not really\n", 100)

// storedObjects lists every object under uploads/ (posted, staged and
// resumable files).
func storedObjects(t *testing.T, st *teststack.Stack) []string {
	t.Helper()
	keys, err := st.Store.List(context.Background(), "uploads/")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestAttackCaptchaFileBeforeTheAnswerIsRefused: a multipart post whose
// file comes before the captcha answer is refused with errors._captcha
// before the file is read, even with a good answer after it: nothing
// reaches S3 and nothing is kept as a staged upload. The same post with
// the answer first is accepted.
func TestAttackCaptchaFileBeforeTheAnswerIsRefused(t *testing.T) {
	sv := newSiteverify(t, "turnstile")
	st := startWithActions(t, gateActions(sv.srv.URL), map[string]string{"CAPTCHA_SECRET": sv.secret})
	post := func(parts ...part) (*http.Response, errorBody) {
		t.Helper()
		body, ct := orderedMultipart(t, parts...)
		resp, raw := teststack.Post(t, st.APIURL+"/actions/apply", body, ct, map[string]string{"Accept": "application/json"})
		var e errorBody
		_ = json.Unmarshal(raw, &e)
		return resp, e
	}
	for _, tc := range []struct {
		name  string
		parts []part
	}{
		{"file, then a good answer", []part{val("email", "a@example.com"), file("cv"), val("cf-turnstile-response", "ok-1")}},
		{"file, no answer", []part{val("email", "a@example.com"), file("cv")}},
	} {
		resp, e := post(tc.parts...)
		if resp.StatusCode != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" ||
			len(e.Errors["_captcha"]) != 1 || !strings.Contains(e.Errors["_captcha"][0], "before the first file") {
			t.Errorf("%s: got %d %+v, want 422 validation_failed with errors._captcha", tc.name, resp.StatusCode, e)
		}
		if e.Values["email"] != "a@example.com" {
			t.Errorf("%s: the values read before the file are not echoed: %v", tc.name, e.Values)
		}
		if keys := storedObjects(t, st); len(keys) != 0 {
			t.Fatalf("%s: the refused post stored %v", tc.name, keys)
		}
	}
	// An action's messages: replace formq's English here too.
	body, ct := orderedMultipart(t, val("email", "a@example.com"), file("cv"), val("cf-turnstile-response", "ok-1"))
	oresp, raw := teststack.Post(t, st.APIURL+"/actions/other", body, ct, map[string]string{"Accept": "application/json"})
	var oe errorBody
	_ = json.Unmarshal(raw, &oe)
	if oresp.StatusCode != http.StatusUnprocessableEntity || len(oe.Errors["_captcha"]) != 1 || oe.Errors["_captcha"][0] != "Bitte zuerst die Aufgabe lösen, dann die Dateien senden." {
		t.Errorf("a file before the answer, with messages: captcha_first: got %d %+v", oresp.StatusCode, oe)
	}
	if n := sv.callCount(); n != 0 {
		t.Errorf("the answer after the file was checked with the provider %d times; it should not be read at all", n)
	}
	if n := countKeys(t, st, submissionTasks); n != 0 {
		t.Fatalf("refused posts left %d submissions", n)
	}
	resp, e := post(val("email", "a@example.com"), val("cf-turnstile-response", "ok-2"), file("cv"))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the answer first: %d %+v", resp.StatusCode, e)
	}
	if keys, _ := st.Store.List(context.Background(), "uploads/apply/"); len(keys) != 1 {
		t.Errorf("the accepted post's file: %v", keys)
	}
}

// TestAttackCaptchaPreUploadRoutesNeedAnAnswer: POST /uploads, presign and
// tus creation for a captcha action's fields store nothing without a
// verified answer (Formq-Captcha); an answer is spent once and buys a
// grant for a bounded number of further uploads and for one post; a
// grant is refused for another action and once used up.
func TestAttackCaptchaPreUploadRoutesNeedAnAnswer(t *testing.T) {
	sv := newSiteverify(t, "turnstile")
	st := startWithActions(t, gateActions(sv.srv.URL), map[string]string{"CAPTCHA_SECRET": sv.secret})
	upload := func(action, captcha string) (*http.Response, errorBody, string) {
		t.Helper()
		body, ct := orderedMultipart(t, file("cv"))
		h := map[string]string{"Accept": "application/json", "Formq-Captcha": captcha}
		resp, raw := teststack.Post(t, st.APIURL+"/uploads?action="+action+"&field=cv", body, ct, h)
		var e errorBody
		_ = json.Unmarshal(raw, &e)
		var ok struct {
			Uploads []struct {
				Ref string `json:"ref"`
			} `json:"uploads"`
		}
		_ = json.Unmarshal(raw, &ok)
		ref := ""
		if len(ok.Uploads) == 1 {
			ref = ok.Uploads[0].Ref
		}
		return resp, e, ref
	}
	refused := func(what string, resp *http.Response, e errorBody, want string) {
		t.Helper()
		if resp.StatusCode != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" ||
			len(e.Errors["_captcha"]) != 1 || !strings.Contains(e.Errors["_captcha"][0], want) {
			t.Errorf("%s: got %d %+v, want 422 validation_failed, errors._captcha with %q", what, resp.StatusCode, e, want)
		}
	}

	resp, e, _ := upload("apply", "")
	refused("/uploads without an answer", resp, e, "Complete the challenge")
	resp, e, _ = upload("apply", "bot-guess")
	refused("/uploads with a wrong answer", resp, e, "not passed")
	pre, _ := json.Marshal(map[string]string{"action": "apply", "field": "cv", "contentType": "application/pdf"})
	resp, raw := teststack.Post(t, st.APIURL+"/uploads/presign", bytes.NewReader(pre), "application/json", map[string]string{"Accept": "application/json"})
	_ = json.Unmarshal(raw, &e)
	refused("presign without an answer", resp, e, "Complete the challenge")
	resp, raw = teststack.Do(t, http.MethodPost, st.APIURL+"/uploads/tus/?action=apply&field=big", nil,
		map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "100", "Accept": "application/json"})
	_ = json.Unmarshal(raw, &e)
	refused("tus creation without an answer", resp, e, "Complete the challenge")
	if keys := storedObjects(t, st); len(keys) != 0 {
		t.Fatalf("refused pre-uploads stored %v", keys)
	}

	// A good answer is spent and buys a grant.
	resp, e, ref := upload("apply", "ok-1")
	grant := resp.Header.Get("Formq-Captcha-Grant")
	if resp.StatusCode != http.StatusCreated || ref == "" || !strings.HasPrefix(grant, "formq-grant.") {
		t.Fatalf("/uploads with a good answer: %d %+v, grant %q", resp.StatusCode, e, grant)
	}
	resp, e, _ = upload("apply", "ok-1")
	refused("the same answer again", resp, e, "already used")
	resp, e, _ = upload("other", grant)
	refused("the grant for another action", resp, e, "not valid")
	resp, raw = teststack.Do(t, http.MethodPost, st.APIURL+"/uploads/tus/?action=apply&field=big", nil,
		map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "100", "Formq-Captcha": grant})
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("tus creation with the grant: %d %s", resp.StatusCode, raw)
	}
	resp, raw = teststack.Post(t, st.APIURL+"/uploads/presign", bytes.NewReader(pre), "application/json", map[string]string{"Accept": "application/json", "Formq-Captcha": grant})
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("presign with the grant: %d %s", resp.StatusCode, raw)
	}
	// apply takes 2 files: the grant admits 4 pre-upload requests (the
	// answer's own, tus, presign, this one), then none.
	if resp, e, _ := upload("apply", grant); resp.StatusCode != http.StatusCreated {
		t.Errorf("the grant's last upload: %d %+v", resp.StatusCode, e)
	}
	resp, e, _ = upload("apply", grant)
	refused("the grant past its uploads", resp, e, "already used")

	// The grant stands in for the spent answer in the post, once.
	body, ct := orderedMultipart(t, val("email", "a@example.com"), val("cf-turnstile-response", grant), val("cv", ref))
	resp, raw = teststack.Post(t, st.APIURL+"/actions/apply", body, ct, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the post with the grant and the staged file: %d %s", resp.StatusCode, raw)
	}
	body, ct = orderedMultipart(t, val("email", "b@example.com"), val("cf-turnstile-response", grant))
	resp, raw = teststack.Post(t, st.APIURL+"/actions/apply", body, ct, map[string]string{"Accept": "application/json"})
	_ = json.Unmarshal(raw, &e)
	refused("a second post with the grant", resp, e, "already used")
	if n := countKeys(t, st, submissionTasks); n != 1 {
		t.Errorf("%d submissions, want 1", n)
	}
	if n := sv.callCount(); n != 3 {
		t.Errorf("siteverify was asked %d times, want 3 (bot-guess, ok-1 twice): a grant is checked by formq", n)
	}
}
