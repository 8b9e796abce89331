package actions_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// schemaLine is the first line of every shipped actions file, pointing
// editors (yaml-language-server) at the schema by a relative path.
const schemaLine = "# yaml-language-server: $schema="

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(actions.Schema))
	if err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("actions.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("actions.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return sch
}

// yamlValue is a YAML document as the JSON data model an editor's schema
// check sees.
func yamlValue(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("not YAML: %v", err)
	}
	return jsonModel(v)
}

func jsonModel(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonModel(e)
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonModel(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonModel(e)
		}
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

// parseAsTheAPI checks a document as the API does at start: with the
// built-in steps' checks.
func parseAsTheAPI(file string, data []byte) error {
	_, err := actions.ParseWith(file, data, actions.ParseOptions{Steps: builtin.Checks(nil).Checks()})
	return err
}

// errorLocations are the instance locations of an error and its causes.
func errorLocations(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		out = append(out, "/"+strings.Join(e.InstanceLocation, "/"))
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

// TestSchemaAcceptsEveryActionsFileInTheRepo walks the repository for YAML
// files with a top-level actions key: each must load as the API loads it,
// pass the schema, and point editors at the schema on its first line.
func TestSchemaAcceptsEveryActionsFileInTheRepo(t *testing.T) {
	sch := compileSchema(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	schemaPath := filepath.Join(root, "actions", "actions.schema.json")
	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".data", "bin", "node_modules", "fuzz":
				return filepath.SkipDir
			case "examples":
				// Examples declare steps they register from Go, which
				// neither the built-in checks nor the schema know; each
				// example's own test loads its file with its steps.
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
		if yaml.Unmarshal(data, &top) != nil {
			return nil // multi-document manifests and the like
		}
		if _, ok := top["actions"]; !ok {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		found = append(found, rel)
		t.Run(rel, func(t *testing.T) {
			if _, err := actions.Load(path, actions.ParseOptions{Steps: builtin.Checks(nil).Checks()}); err != nil {
				t.Fatalf("the API refuses it: %v", err)
			}
			if err := sch.Validate(yamlValue(t, data)); err != nil {
				t.Errorf("the schema refuses it: %v", err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			ref, ok := strings.CutPrefix(first, schemaLine)
			if !ok {
				t.Fatalf("first line %q; want %s<relative path of actions/actions.schema.json>", first, schemaLine)
			}
			if got := filepath.Join(filepath.Dir(path), ref); got != schemaPath {
				t.Errorf("the schema line points at %s, want %s", got, schemaPath)
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"deployments/local/actions.yaml", "actions/testdata/actions.yaml", "actions/testdata/uploads.yaml"} {
		if !slices.Contains(found, want) {
			t.Errorf("the walk did not find %s (found %v)", want, found)
		}
	}
}

// everyKey uses every key the language has, so the schema cannot refuse a
// feature the parser accepts.
const everyKey = `upload_profiles:
  avatars:
    max_size: 5MB
    max_files: 2
    types: [image/png, "image/*"]
    label: Picture
    messages: {required: "Pick one", max_size: "Too big", max_files: "Too many", types: "Not a picture"}
    ttl: 1h30m
    origins: [https://app.example.com]
    strict_origin: true
    auth: optional
    rate_limit: 10/minute
    resumable: true
actions:
  everything:
    title: Everything
    fields:
      name: {type: text, label: Name, required: true, min_length: 2, max_length: 100, pattern: "[A-Za-z ]+",
             placeholder: Ada, help: Your name, autocomplete: name, default: Ada,
             messages: {required: a, min_length: b, max_length: c, pattern: d, format: e}}
      bio: {type: textarea}
      email: {type: email}
      site: {type: url}
      score: {type: number, min: -1.5, max: 2.5, messages: {min: low, max: high}}
      age: {type: integer, min: 0, max: 130}
      agree: {type: boolean}
      born: {type: date}
      plan: {type: select, options: [free, pro, 3, true], messages: {options: pick}}
      tier: {type: select, multiple: true, options: [{value: a, label: A}, {value: 2}]}
      ref: {type: hidden}
      secret: {type: password}
      contact: {type: email, personal: true}
      plain: {}
    uploads:
      avatar: {max_size: 512KiB, max_files: 3, types: [image/jpeg], required: true, label: Avatar,
               messages: {required: a, max_size: b, max_files: c, types: d}}
      doc: {max_size: 1048576, resumable: false}
    steps:
      - thumbnail: {field: avatar, sizes: [64, 4096], max_pixels: 1000000, timeout: 1m, max_attempts: 100, backoff: 500ms}
      - webhook: {url: "https://hooks.example.com/x", secret_env: HOOK_SECRET, timeout: 10s, max_attempts: 1}
      - email: {to: "team@example.com", subject: "New {name}"}
      - email: {to: ["a@example.com", "Bo <b@example.com>"], subject: Hi, body: "{id}", from: "formq@example.com", backoff: 2s}
    revalidate: {paths: [/users], tags: [users, "user:{id}"]}
    redirect: /done?id={id}
    message: Thanks!
    max_body: 12mb
    queue: critical
    origins: [http://localhost:3000]
    strict_origin: false
    auth: required
    rate_limit: 5/30s
    honeypot: website
    idempotency: 48h
    bound: [org]
    template: custom-form.html
    captcha: {provider: hcaptcha, secret_env: HCAPTCHA_SECRET, site_key: 10000000-ffff-ffff-ffff-000000000001, verify_url: "http://127.0.0.1:9/siteverify", on_error: allow}
    min_fill_time: 3s
    retention: 90d
    spam:
      threshold: 6
      on_spam: keep
      keep_for: 14d
      scores: {honeypot: 8, too_fast: 8, captcha: 2}
      links: {max: 1, score: 2.5}
      blocked_words: {list: [casino, "cheap pills"], score: 5}
      blocked_domains: {list: [spam.example], score: 5}
      scripts: {allow: [Latin, Greek], score: 3}
      duplicates: {window: 12h, score: 3}
      rate: {max: 5, per: 1h, score: 3}
      model: {weight: 4, min_examples: 20}
  defaults:
    fields: {q: {}}
    honeypot: false
    rate_limit: 100/h
  honeypot-off: {honeypot: "off", queue: low}
  honeypot-default: {honeypot: _gotcha, auth: optional}
  honeypot-on: {honeypot: true, max_body: 1GB, uploads: {f: {max_size: 1g}}}
`

func TestSchemaAcceptsEveryKey(t *testing.T) {
	sch := compileSchema(t)
	if err := parseAsTheAPI("testdata/every-key.yaml", []byte(everyKey)); err != nil {
		t.Fatalf("the API refuses the document: %v", err)
	}
	if err := sch.Validate(yamlValue(t, []byte(everyKey))); err != nil {
		t.Errorf("the schema refuses the document: %v", err)
	}
}

// TestSchemaRefusesWhatTheParserRefuses: every document here is refused by
// the parser for a reason a schema can state, and the schema must refuse
// it at that place.
func TestSchemaRefusesWhatTheParserRefuses(t *testing.T) {
	sch := compileSchema(t)
	act := func(body string) string { return "actions:\n  a:\n" + body }
	fld := func(f string) string { return act("    fields:\n      f: " + f + "\n") }
	upl := func(u string) string { return act("    uploads:\n      u: " + u + "\n") }
	step := func(s string) string { return act("    steps:\n      - " + s + "\n") }
	prof := func(p string) string { return "upload_profiles:\n  p: " + p + "\nactions:\n  a: {}\n" }
	// at is where the schema must refuse the document, or "name X" for a
	// refused key name.
	cases := []struct {
		name, doc, at string
	}{
		// the file
		{"empty document", "", "/"},
		{"no actions", "upload_profiles: {}\n", "/"},
		{"no action", "actions: {}\n", "/actions"},
		{"unknown top-level key", "actionz:\n  a: {}\n", "/"},
		{"action not a mapping", "actions:\n  a: [1]\n", "/actions/a"},
		{"action name", "actions:\n  9lives: {}\n", "name 9lives"},
		// an action
		{"unknown action key", act("    colour: red\n"), "/actions/a"},
		{"queue", act("    queue: urgent\n"), "/actions/a/queue"},
		{"auth", act("    auth: maybe\n"), "/actions/a/auth"},
		{"rate limit words", act("    rate_limit: often\n"), "/actions/a/rate_limit"},
		{"rate limit zero count", act("    rate_limit: 0/1m\n"), "/actions/a/rate_limit"},
		{"rate limit zero period", act("    rate_limit: 10/0s\n"), "/actions/a/rate_limit"},
		{"rate limit unit", act("    rate_limit: 10/week\n"), "/actions/a/rate_limit"},
		{"max_body words", act("    max_body: lots\n"), "/actions/a/max_body"},
		{"max_body zero", act("    max_body: 0MB\n"), "/actions/a/max_body"},
		{"max_body unit", act("    max_body: 5TB\n"), "/actions/a/max_body"},
		{"idempotency words", act("    idempotency: forever\n"), "/actions/a/idempotency"},
		{"idempotency days", act("    idempotency: 2d\n"), "/actions/a/idempotency"},
		{"idempotency zero", act("    idempotency: 0s\n"), "/actions/a/idempotency"},
		{"honeypot not a name", act("    honeypot: \"my trap\"\n"), "/actions/a/honeypot"},
		{"honeypot list", act("    honeypot: [a]\n"), "/actions/a/honeypot"},
		{"honeypot number", act("    honeypot: 5\n"), "/actions/a/honeypot"},
		{"origin without scheme", act("    origins: [example.com]\n"), "/actions/a/origins/0"},
		{"origins not a list", act("    origins: https://example.com\n"), "/actions/a/origins"},
		{"strict_origin not a boolean", act("    strict_origin: sometimes\n"), "/actions/a/strict_origin"},
		{"bound not a list", act("    bound: org\n"), "/actions/a/bound"},
		{"revalidate unknown key", act("    revalidate: {path: [/x]}\n"), "/actions/a/revalidate"},
		{"revalidate paths not a list", act("    revalidate: {paths: /x}\n"), "/actions/a/revalidate/paths"},
		{"steps not a list", act("    steps: {thumbnail: {}}\n"), "/actions/a/steps"},
		{"captcha provider", act("    captcha: {provider: friendlycaptcha, secret_env: S, site_key: k}\n"), "/actions/a/captcha/provider"},
		{"captcha without site key", act("    captcha: {provider: turnstile, secret_env: S}\n"), "/actions/a/captcha"},
		{"captcha on_error", act("    captcha: {provider: turnstile, secret_env: S, site_key: k, on_error: retry}\n"), "/actions/a/captcha/on_error"},
		{"captcha min_score over 1", act("    captcha: {provider: recaptcha, secret_env: S, site_key: k, min_score: 1.5}\n"), "/actions/a/captcha/min_score"},
		{"captcha action with a space", act("    captcha: {provider: turnstile, secret_env: S, site_key: k, action: \"sign up\"}\n"), "/actions/a/captcha/action"},
		{"altcha with a site key", act("    captcha: {provider: altcha, secret_env: S, site_key: k}\n"), "/actions/a/captcha"},
		{"max_number off altcha", act("    captcha: {provider: turnstile, secret_env: S, site_key: k, max_number: 5000}\n"), "/actions/a/captcha"},
		{"altcha max_number too small", act("    captcha: {provider: altcha, secret_env: S, max_number: 10}\n"), "/actions/a/captcha/max_number"},
		{"captcha unknown key", act("    captcha: {provider: turnstile, secret_env: S, site_key: k, theme: dark}\n"), "/actions/a/captcha"},
		{"retention words", act("    retention: forever\n"), "/actions/a/retention"},
		{"min_fill_time words", act("    min_fill_time: quick\n"), "/actions/a/min_fill_time"},
		{"spam threshold zero", act("    spam: {threshold: 0}\n"), "/actions/a/spam/threshold"},
		{"spam on_spam", act("    spam: {on_spam: bounce}\n"), "/actions/a/spam/on_spam"},
		{"spam keep_for words", act("    spam: {keep_for: ages}\n"), "/actions/a/spam/keep_for"},
		{"spam negative score", act("    spam: {links: {score: -1}}\n"), "/actions/a/spam/links/score"},
		{"spam rate without max", act("    spam: {rate: {per: 1h}}\n"), "/actions/a/spam/rate"},
		{"spam unknown key", act("    spam: {akismet: true}\n"), "/actions/a/spam"},
		{"spam unknown score", act("    spam: {scores: {geo: 3}}\n"), "/actions/a/spam/scores"},
		// a field
		{"field name", act("    fields:\n      9x: {}\n"), "name 9x"},
		{"field not a mapping", fld("text"), "/actions/a/fields/f"},
		{"unknown field key", fld("{type: text, colour: red}"), "/actions/a/fields/f"},
		{"field type", fld("{type: txt}"), "/actions/a/fields/f/type"},
		{"required not a boolean", fld("{required: maybe}"), "/actions/a/fields/f/required"},
		{"min_length negative", fld("{min_length: -1}"), "/actions/a/fields/f/min_length"},
		{"min_length not a number", fld("{min_length: five}"), "/actions/a/fields/f/min_length"},
		{"max_length zero", fld("{max_length: 0}"), "/actions/a/fields/f/max_length"},
		{"max not a number", fld("{type: number, max: lots}"), "/actions/a/fields/f/max"},
		{"min on a text field", fld("{type: text, min: 1}"), "/actions/a/fields/f"},
		{"max on an untyped field", fld("{max: 1}"), "/actions/a/fields/f"},
		{"select without options", fld("{type: select}"), "/actions/a/fields/f"},
		{"select with no options", fld("{type: select, options: []}"), "/actions/a/fields/f/options"},
		{"options not a list", fld("{type: select, options: a}"), "/actions/a/fields/f/options"},
		{"message of an unknown rule", fld("{messages: {shape: x}}"), "/actions/a/fields/f/messages"},
		{"message not a string", fld("{messages: {required: [x]}}"), "/actions/a/fields/f/messages/required"},
		{"multiple not a boolean", fld("{multiple: many}"), "/actions/a/fields/f/multiple"},
		// an upload
		{"upload without max_size", upl("{max_files: 1}"), "/actions/a/uploads/u"},
		{"upload max_size words", upl("{max_size: big}"), "/actions/a/uploads/u/max_size"},
		{"upload max_files negative", upl("{max_size: 1MB, max_files: -1}"), "/actions/a/uploads/u/max_files"},
		{"upload type without slash", upl("{max_size: 1MB, types: [png]}"), "/actions/a/uploads/u/types/0"},
		{"upload unknown key", upl("{max_size: 1MB, size: 2MB}"), "/actions/a/uploads/u"},
		{"upload message of an unknown rule", upl("{max_size: 1MB, messages: {pattern: x}}"), "/actions/a/uploads/u/messages"},
		{"upload name", act("    uploads:\n      _u: {max_size: 1MB}\n"), "name _u"},
		// steps
		{"unknown step type", step("thumbnial: {field: f, sizes: [64]}"), "/actions/a/steps/0"},
		{"two types in one step", act("    steps:\n      - {email: {to: a@example.com, subject: x}, webhook: {url: \"https://x.example\", secret_env: S}}\n"), "/actions/a/steps/0"},
		{"step not a mapping", step("thumbnail: yes"), "/actions/a/steps/0/thumbnail"},
		{"thumbnail size zero", step("thumbnail: {field: f, sizes: [0]}"), "/actions/a/steps/0/thumbnail/sizes/0"},
		{"thumbnail size too big", step("thumbnail: {field: f, sizes: [5000]}"), "/actions/a/steps/0/thumbnail/sizes/0"},
		{"thumbnail without field", step("thumbnail: {sizes: [64]}"), "/actions/a/steps/0/thumbnail"},
		{"thumbnail without sizes", step("thumbnail: {field: f}"), "/actions/a/steps/0/thumbnail"},
		{"thumbnail unknown key", step("thumbnail: {field: f, sizes: [64], width: 3}"), "/actions/a/steps/0/thumbnail"},
		{"webhook scheme", step("webhook: {url: \"ftp://x\", secret_env: HOOK}"), "/actions/a/steps/0/webhook/url"},
		{"webhook without secret_env", step("webhook: {url: \"https://x.example\"}"), "/actions/a/steps/0/webhook"},
		{"webhook secret_env name", step("webhook: {url: \"https://x.example\", secret_env: my-secret}"), "/actions/a/steps/0/webhook/secret_env"},
		{"email without subject", step("email: {to: a@example.com}"), "/actions/a/steps/0/email"},
		{"email without to", step("email: {subject: hi}"), "/actions/a/steps/0/email"},
		{"email to an empty list", step("email: {to: [], subject: hi}"), "/actions/a/steps/0/email/to"},
		{"step timeout", step("email: {to: a@example.com, subject: hi, timeout: soon}"), "/actions/a/steps/0/email/timeout"},
		{"step backoff zero", step("email: {to: a@example.com, subject: hi, backoff: 0s}"), "/actions/a/steps/0/email/backoff"},
		{"step max_attempts zero", step("webhook: {url: \"https://x.example\", secret_env: S, max_attempts: 0}"), "/actions/a/steps/0/webhook/max_attempts"},
		{"step max_attempts over 100", step("webhook: {url: \"https://x.example\", secret_env: S, max_attempts: 101}"), "/actions/a/steps/0/webhook/max_attempts"},
		// upload profiles
		{"profiles not a mapping", "upload_profiles: [a]\nactions:\n  a: {}\n", "/upload_profiles"},
		{"profile name", "upload_profiles:\n  1p: {max_size: 1MB}\nactions:\n  a: {}\n", "name 1p"},
		{"profile without max_size", prof("{types: [image/png]}"), "/upload_profiles/p"},
		{"profile unknown key", prof("{max_size: 1MB, expires: 1h}"), "/upload_profiles/p"},
		{"profile ttl", prof("{max_size: 1MB, ttl: forever}"), "/upload_profiles/p/ttl"},
		{"profile auth", prof("{max_size: 1MB, auth: maybe}"), "/upload_profiles/p/auth"},
		{"profile origin", prof("{max_size: 1MB, origins: [example.com]}"), "/upload_profiles/p/origins/0"},
		{"profile rate limit", prof("{max_size: 1MB, rate_limit: lots}"), "/upload_profiles/p/rate_limit"},
		{"profile max_files zero", prof("{max_size: 1MB, max_files: -2}"), "/upload_profiles/p/max_files"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := parseAsTheAPI("testdata/invalid.yaml", []byte(tc.doc)); !errors.Is(err, actions.ErrInvalidFile) {
				t.Fatalf("the parser accepts the document (err %v); the case is wrong:\n%s", err, tc.doc)
			}
			err := sch.Validate(yamlValue(t, []byte(tc.doc)))
			if err == nil {
				t.Fatalf("the schema accepts a document the parser refuses:\n%s", tc.doc)
			}
			if name, ok := strings.CutPrefix(tc.at, "name "); ok {
				// A refused name is reported apart from its place.
				if !strings.Contains(err.Error(), "invalid propertyName '"+name+"'") {
					t.Errorf("want the name %s refused:\n%v", name, err)
				}
				return
			}
			locs := errorLocations(err)
			if !slices.ContainsFunc(locs, func(l string) bool { return l == tc.at || strings.HasPrefix(l, strings.TrimSuffix(tc.at, "/")+"/") }) {
				t.Errorf("refused at %v, want at %s:\n%v", locs, tc.at, err)
			}
		})
	}
}

// TestSchemaLeavesCrossFieldRulesToTheParser lists what the parser refuses
// that a JSON Schema cannot state: comparisons between two values, names
// shared across mappings, Go regular expressions, files on disk, mail
// address syntax. The schema accepts these; the API refuses them at start.
func TestSchemaLeavesCrossFieldRulesToTheParser(t *testing.T) {
	sch := compileSchema(t)
	cases := []struct{ name, doc, problem string }{
		{"min_length over max_length", "actions:\n  a:\n    fields: {f: {min_length: 5, max_length: 2}}\n", "min_length is over max_length"},
		{"min over max", "actions:\n  a:\n    fields: {f: {type: number, min: 5, max: 2}}\n", "min is over max"},
		{"pattern that does not compile", "actions:\n  a:\n    fields: {f: {pattern: \"([a-z\"}}\n", "pattern"},
		{"upload named like a field", "actions:\n  a:\n    fields: {f: {}}\n    uploads: {f: {max_size: 1MB}}\n", "declared both as a field and as an upload"},
		{"bound named like a field", "actions:\n  a:\n    fields: {f: {}}\n    bound: [f]\n", "bound argument has the name of a form field"},
		{"max_size over max_body", "actions:\n  a:\n    max_body: 1MB\n    uploads: {f: {max_size: 2MB}}\n", "is over the action's max_body"},
		{"profile max_size over 5GB", "upload_profiles: {p: {max_size: 6GB}}\nactions:\n  a: {}\n", "at most 5GB"},
		{"profile ttl over 24h", "upload_profiles: {p: {max_size: 1MB, ttl: 25h}}\nactions:\n  a: {}\n", "ttl"},
		{"missing template", "actions:\n  a:\n    template: no-such-template.html\n", "template"},
		{"email address", "actions:\n  a:\n    steps:\n      - email: {to: \"not an address\", subject: hi}\n", "to \"not an address\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := parseAsTheAPI("testdata/invalid.yaml", []byte(tc.doc))
			if !errors.Is(err, actions.ErrInvalidFile) || !strings.Contains(err.Error(), tc.problem) {
				t.Fatalf("the parser must refuse it with %q, got %v", tc.problem, err)
			}
			if err := sch.Validate(yamlValue(t, []byte(tc.doc))); err != nil {
				t.Errorf("the schema now refuses it (move the case to TestSchemaRefusesWhatTheParserRefuses): %v", err)
			}
		})
	}
}
