package conformance_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/conformance"
	"github.com/formq/formq/internal/openapi"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"go.yaml.in/yaml/v3"
)

// lintReport is the part of `redocly lint --format=json` the tests read.
type lintReport struct {
	Totals struct {
		Errors   int `json:"errors"`
		Warnings int `json:"warnings"`
		Ignored  int `json:"ignored"`
	} `json:"totals"`
	Problems []struct {
		RuleID   string `json:"ruleId"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
		Location []struct {
			Pointer string `json:"pointer"`
		} `json:"location"`
	} `json:"problems"`
}

// redoclyLint lints openapi.json in dir with the redocly.yaml there.
func redoclyLint(t *testing.T, tl *conformance.Tools, dir string) lintReport {
	t.Helper()
	res := tl.Run(t, dir, nil, "redocly", "lint", "openapi.json", "--format=json")
	var rep lintReport
	if err := json.Unmarshal(res.Stdout, &rep); err != nil {
		t.Fatalf("redocly lint printed no report (%v):\n%s", err, res)
	}
	return rep
}

// TestOpenAPILint runs Redocly's linter with its recommended rules over
// openapi.json: no error and no warning but those
// internal/openapi/.redocly.lint-ignore.yaml gives a reason for. A copy of
// the document without its servers must fail, so a configuration that
// turned the rules off would fail here too.
func TestOpenAPILint(t *testing.T) {
	tl := conformance.Install(t)
	dir := filepath.Join(filepath.Dir(tl.Dir), "openapi")
	rep := redoclyLint(t, tl, dir)
	for _, p := range rep.Problems {
		if p.Severity != "off" {
			where := ""
			if len(p.Location) > 0 {
				where = p.Location[0].Pointer
			}
			t.Errorf("%s %s at %s: %s", p.Severity, p.RuleID, where, p.Message)
		}
	}
	t.Logf("redocly lint openapi.json: %d errors, %d warnings, %d ignored with a reason", rep.Totals.Errors, rep.Totals.Warnings, rep.Totals.Ignored)
	if rep.Totals.Errors+rep.Totals.Warnings != 0 {
		t.Errorf("redocly lint: %d errors, %d warnings; want none", rep.Totals.Errors, rep.Totals.Warnings)
	}

	var doc map[string]any
	if err := json.Unmarshal(openapi.Document, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "servers")
	broken := t.TempDir()
	b, _ := json.Marshal(doc)
	for name, data := range map[string][]byte{"openapi.json": b} {
		if err := os.WriteFile(filepath.Join(broken, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "redocly.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "redocly.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if rep := redoclyLint(t, tl, broken); !hasRule(rep, "no-empty-servers") {
		t.Errorf("the document without servers linted without a no-empty-servers error: %+v", rep.Totals)
	}
}

func hasRule(rep lintReport, rule string) bool {
	for _, p := range rep.Problems {
		if p.RuleID == rule && p.Severity == "error" {
			return true
		}
	}
	return false
}

// ajvCase is one schema for ajv.mjs with the values to validate.
type ajvCase struct {
	Name   string `json:"name"`
	Schema any    `json:"schema"`
	Values []any  `json:"values"`
}

// ajvResult is ajv.mjs's verdict on one case.
type ajvResult struct {
	Name         string    `json:"name"`
	CompileError *string   `json:"compileError"`
	Valid        []bool    `json:"valid"`
	Errors       []*string `json:"errors"`
}

// Ajv compiles each case's schema with ajv in strict mode (draft 2020-12,
// ajv-formats) and validates its values.
func Ajv(t *testing.T, tl *conformance.Tools, cases []ajvCase) []ajvResult {
	t.Helper()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	res := tl.Run(t, "", in, "ajv.mjs")
	var out []ajvResult
	if res.Err != nil || json.Unmarshal(res.Stdout, &out) != nil || len(out) != len(cases) {
		t.Fatalf("ajv.mjs: %v\n%s", res.Err, res)
	}
	return out
}

// actionsFiles are the repository's actions files (YAML with a top-level
// actions key) outside examples/, whose own steps the schema does not know,
// as JSON values.
func actionsFiles(t *testing.T) map[string]any {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]any{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".data", "bin", "node_modules", "fuzz", "examples":
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var top map[string]any
		if yaml.Unmarshal(data, &top) != nil || top["actions"] == nil {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		files[rel] = top
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestActionsFileSchemaAjvStrict: ajv in strict mode compiles
// actions/actions.schema.json and accepts every actions file of the
// repository, and refuses a file with an unknown key.
func TestActionsFileSchemaAjvStrict(t *testing.T) {
	tl := conformance.Install(t)
	var schema any
	if err := json.Unmarshal(actions.Schema, &schema); err != nil {
		t.Fatal(err)
	}
	files := actionsFiles(t)
	if len(files) < 5 {
		t.Fatalf("only %d actions files found", len(files))
	}
	var names []string
	values := []any{map[string]any{"actions": map[string]any{"contact": map[string]any{"fields": map[string]any{}, "colour": "red"}}}}
	for name, v := range files {
		names = append(names, name)
		values = append(values, v)
	}
	res := Ajv(t, tl, []ajvCase{{Name: "actions.schema.json", Schema: schema, Values: values}})[0]
	if res.CompileError != nil {
		t.Fatalf("ajv strict refuses actions/actions.schema.json: %s", *res.CompileError)
	}
	if res.Valid[0] {
		t.Errorf("ajv accepted an action with an unknown key")
	}
	for i, name := range names {
		if !res.Valid[i+1] {
			t.Errorf("%s: ajv refuses it: %s", name, *res.Errors[i+1])
		}
	}
	t.Logf("ajv strict: actions.schema.json compiles; %d actions files valid", len(names))
}

// hook receives webhook deliveries.
type hook struct {
	mu   sync.Mutex
	seen []delivery
}

type delivery struct {
	Header map[string]string
	Body   []byte
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := delivery{Header: map[string]string{}, Body: body}
	for k := range r.Header {
		d.Header[strings.ToLower(k)] = r.Header.Get(k)
	}
	h.mu.Lock()
	h.seen = append(h.seen, d)
	h.mu.Unlock()
}

func (h *hook) deliveries() []delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]delivery(nil), h.seen...)
}

// verify runs webhook.mjs (the standardwebhooks library) on a delivery.
func verify(t *testing.T, tl *conformance.Tools, secret string, d delivery) conformance.Result {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"secret": secret, "headers": d.Header, "body": string(d.Body)})
	return tl.Run(t, "", in, "webhook.mjs")
}

// TestWebhookDeliveryVerifies: a real submission's webhook delivery, made
// by the worker, verifies with the standardwebhooks library under the
// step's secret; the same delivery with one byte changed, or under another
// secret, does not.
func TestWebhookDeliveryVerifies(t *testing.T) {
	tl := conformance.Install(t)
	h := &hook{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	const secret = "whsec_Zm9ybXEtY29uZm9ybWFuY2UtdGVzdC1rZXkh" // base64 of "formq-conformance-test-key!"
	file := filepath.Join(t.TempDir(), "actions.yaml")
	if err := os.WriteFile(file, []byte(`actions:
  contact:
    fields:
      name: {type: text, required: true}
      email: {type: email, required: true}
    steps:
      - webhook: {url: "`+srv.URL+`/hook", secret_env: HOOK_SECRET}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	st := teststack.Start(t, map[string]string{"FORMQ_ACTIONS": file, "HOOK_SECRET": secret, "FORMQ_WEBHOOK_ALLOW_PRIVATE": "true"})
	resp, body := teststack.Post(t, st.APIURL+"/actions/contact", strings.NewReader("name=Ada&email=ada%40example.com"),
		"application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
	var accepted struct {
		Submission struct {
			ID string `json:"id"`
		} `json:"submission"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &accepted) != nil {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	teststack.WaitFor(t, 30*time.Second, "the webhook delivery", func() bool { return len(h.deliveries()) > 0 })
	d := h.deliveries()[0]

	res := verify(t, tl, secret, d)
	if res.Err != nil {
		t.Fatalf("standardwebhooks refuses formq's delivery: %s\nheaders %v", res, d.Header)
	}
	var payload map[string]any
	if err := json.Unmarshal(res.Stdout, &payload); err != nil {
		t.Fatalf("verified payload: %v\n%s", err, res)
	}
	if !strings.Contains(string(d.Body), accepted.Submission.ID) {
		t.Errorf("the delivery does not name submission %s: %s", accepted.Submission.ID, d.Body)
	}

	tampered := d
	tampered.Body = append([]byte(nil), d.Body...)
	tampered.Body[len(tampered.Body)/2] ^= 1
	if res := verify(t, tl, secret, tampered); res.Err == nil {
		t.Errorf("standardwebhooks verified a changed body")
	}
	if res := verify(t, tl, "whsec_b3RoZXItY29uZm9ybWFuY2UtdGVzdC1rZXkh", d); res.Err == nil {
		t.Errorf("standardwebhooks verified the delivery under another secret")
	}
}
