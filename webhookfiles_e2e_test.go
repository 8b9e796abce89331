package formq_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/openapi"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/internal/webhooktest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fileLinksActions: an upload posted to an app whose download links work
// for 3 seconds only.
const fileLinksActions = `actions:
  apply:
    fields:
      name: {type: text, required: true}
    uploads:
      cv: {max_size: 1MB}
    steps:
      - webhook: {url: "%s/hook", secret_env: APPLY_HOOK, file_url_ttl: 3s}
`

// webhookPayloadSchema compiles the OpenAPI document's WebhookPayload,
// the body the document promises webhook receivers.
func webhookPayloadSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openapi.Document))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("https://formq.invalid/openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("https://formq.invalid/openapi.json#/components/schemas/WebhookPayload")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWebhookFileLinks: a webhook receiver gets, per file, a link at the
// public S3 address that downloads the file's bytes with a plain GET and
// nothing else, until the step's file_url_ttl is over; the payload is
// signed and has the shape the OpenAPI document gives it.
func TestWebhookFileLinks(t *testing.T) {
	rc := &webhooktest.Receiver{}
	app := newLocalServer(t, rc)
	file := filepath.Join(t.TempDir(), "actions.yaml")
	if err := os.WriteFile(file, fmt.Appendf(nil, fileLinksActions, app), 0o644); err != nil {
		t.Fatal(err)
	}
	// The public address names S3 otherwise than the worker does, as a
	// public host name would; links signed for one fail at the other.
	s3 := testenv.StartS3(t)
	public := strings.Replace(s3.Endpoint, "127.0.0.1", "localhost", 1)
	st := teststack.StartOn(t, testenv.StartRedis(t), s3, map[string]string{
		"FORMQ_ACTIONS": file, "FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "APPLY_HOOK": webhooktest.Secret,
		"FORMQ_S3_PUBLIC_ENDPOINT": public,
	})
	cv := []byte("%PDF-1.4 curriculum vitae of Ada Lovelace\n")
	body, ct := teststack.MultipartBody(t, map[string]string{"name": "Ada"}, map[string][]byte{"cv": cv})
	resp, answer := teststack.Post(t, st.APIURL+"/actions/apply", body, ct, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, answer)
	}
	teststack.WaitFor(t, 15*time.Second, "the webhook delivery", func() bool { return len(rc.Bodies()) > 0 })
	got := rc.Bodies()[0]
	if rc.BadSignatures() != 0 {
		t.Errorf("%d deliveries with a bad signature", rc.BadSignatures())
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	if err := webhookPayloadSchema(t).Validate(v); err != nil {
		t.Errorf("the payload is not the document's WebhookPayload: %v\n%s", err, got)
	}
	var hook struct {
		Files []struct {
			Field     string    `json:"field"`
			Key       string    `json:"key"`
			URL       string    `json:"url"`
			ExpiresAt time.Time `json:"expiresAt"`
		} `json:"files"`
	}
	if err := json.Unmarshal(got, &hook); err != nil {
		t.Fatal(err)
	}
	if len(hook.Files) != 1 || hook.Files[0].Field != "cv" {
		t.Fatalf("files = %+v; want the cv", hook.Files)
	}
	f := hook.Files[0]
	if !strings.HasPrefix(f.URL, public+"/") {
		t.Errorf("url %s; want it at the public endpoint %s", f.URL, public)
	}
	if left := time.Until(f.ExpiresAt); left <= 0 || left > 3*time.Second {
		t.Errorf("expiresAt %s is %s away; want within the 3s of file_url_ttl", f.ExpiresAt, left)
	}
	get := func(u string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(u) // a plain GET: no header, no credentials
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if status, b := get(f.URL); status != http.StatusOK || !bytes.Equal(b, cv) {
		t.Fatalf("GET url: %d %q; want 200 and the file's bytes", status, b)
	}
	// Signed for the public name: the same link at the internal address
	// does not verify, so the public address is what it was made for.
	internal := strings.Replace(f.URL, public, s3.Endpoint, 1)
	if status, _ := get(internal); status == http.StatusOK {
		t.Errorf("the link answered 200 at the internal address too: it was not signed for the public one")
	}
	time.Sleep(time.Until(f.ExpiresAt) + 1500*time.Millisecond)
	if status, b := get(f.URL); status != http.StatusForbidden {
		t.Errorf("GET url after expiresAt: %d %q; want 403", status, b)
	}
}

// TestWebhookPayloadIsTheRecord: the document's WebhookPayload has every
// property of SubmissionRecord, and its files every property of File plus
// the link, so the two descriptions of one record cannot drift apart.
func TestWebhookPayloadIsTheRecord(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapi.Document, &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Components.Schemas
	for _, pair := range [][2]string{{"SubmissionRecord", "WebhookPayload"}, {"File", "WebhookFile"}} {
		base, linked := s[pair[0]], s[pair[1]]
		for name := range base.Properties {
			if _, ok := linked.Properties[name]; !ok {
				t.Errorf("%s has %q, %s does not", pair[0], name, pair[1])
			}
		}
		for _, name := range base.Required {
			if !slices.Contains(linked.Required, name) {
				t.Errorf("%s requires %q, %s does not", pair[0], name, pair[1])
			}
		}
		if len(linked.Properties) < len(base.Properties) || len(base.Properties) == 0 {
			t.Errorf("%s has %d properties, %s %d", pair[0], len(base.Properties), pair[1], len(linked.Properties))
		}
	}
	for _, name := range []string{"url", "expiresAt"} {
		if !slices.Contains(s["WebhookFile"].Required, name) {
			t.Errorf("WebhookFile does not require %q", name)
		}
	}
}
