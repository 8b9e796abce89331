package actions

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTestdata(t *testing.T) {
	list, err := LoadFile("testdata/actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(list...)
	a, ok := r.Get("create-user")
	if !ok {
		t.Fatal("create-user missing")
	}
	if a.Title != "Create user" || a.MaxBody != 1<<20 || a.Queue != "default" || a.Honeypot != "_gotcha" || a.Idempotency != DefaultIdempotency {
		t.Errorf("action defaults: %+v", a)
	}
	if len(a.Fields) != 2 || a.Fields[0].Name != "name" || a.Fields[1].Name != "email" {
		t.Errorf("fields must keep file order: %v", a.Fields)
	}
	if u := a.Upload("avatar"); u == nil || u.MaxSize != 64<<10 || u.MaxFiles != 1 || len(u.Types) != 3 {
		t.Errorf("avatar upload: %+v", u)
	}
	s, _ := r.Get("signup")
	if s.RateLimit == nil || s.RateLimit.Limit != 3 || s.RateLimit.Period != time.Minute {
		t.Errorf("rate limit: %+v", s.RateLimit)
	}
	if f := s.Field("tags"); f == nil || !f.Multiple || len(f.Options) != 3 {
		t.Errorf("tags: %+v", f)
	}
	if p, _ := r.Get("partner-only"); len(p.Origins) != 1 {
		t.Errorf("origins: %v", p.Origins)
	}
}

func TestParseReportsEveryProblemWithItsPlace(t *testing.T) {
	src := `actions:
  bad-one:
    queue: urgent
    max_body: lots
    rate_limit: often
    fields:
      name: {type: txt, min_length: 5, max_length: 2}
      age:  {type: integer, min: 10, max: 1, colour: red}
      pick: {type: select}
      code: {type: text, pattern: "([a-z"}
      when: {type: text, messages: {shape: "x"}}
    uploads:
      photo: {max_files: -1, types: [png]}
  "9lives":
    auth: maybe
    idempotency: forever
`
	_, err := Parse("broken.yaml", []byte(src))
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidFile) {
		t.Fatalf("err = %v, want *FileError", err)
	}
	want := []string{
		`action "bad-one": queue "urgent"`,
		`action "bad-one": max_body "lots"`,
		`action "bad-one": rate_limit "often"`,
		`field "name": type "txt"`,
		`field "name": min_length is over max_length`,
		`field "age": `, // unknown key colour
		`field "age": min is over max`,
		`field "pick": a select field needs options`,
		`field "code": pattern`,
		`field "when": messages: unknown rule "shape"`,
		`field "photo": max_size is required`,
		`field "photo": max_files must be positive`,
		`field "photo": type "png"`,
		`action "9lives": action name must be`,
		`action "9lives": auth "maybe"`,
		`action "9lives": idempotency "forever"`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("problem %q not reported in:\n%s", w, msg)
		}
	}
	if !strings.Contains(msg, "broken.yaml:") || !strings.Contains(msg, "colour") {
		t.Errorf("want file name and the unknown key in:\n%s", msg)
	}
}

func TestParseRefusesEmptyAndUnknownTopLevel(t *testing.T) {
	for _, src := range []string{"", "actions: {}\n", "actionz:\n  a: {}\n", "actions:\n  a: [1]\n"} {
		if _, err := Parse("x.yaml", []byte(src)); !errors.Is(err, ErrInvalidFile) {
			t.Errorf("%q: err = %v, want ErrInvalidFile", src, err)
		}
	}
}

func TestRegistryAddFromGo(t *testing.T) {
	r := NewRegistry()
	a := &Action{Name: "contact", Fields: []*Field{{Name: "message", FieldRules: FieldRules{Required: true}}}}
	if err := r.Add(a); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(&Action{Name: "contact"}); err == nil {
		t.Fatal("a second action with the same name must be refused")
	}
	got, _ := r.Get("contact")
	if got.MaxBody != DefaultMaxBody || got.Fields[0].Type != "text" || got.Fields[0].Label != "Message" || got.Title != "Contact" {
		t.Errorf("defaults not applied: %+v %+v", got, got.Fields[0])
	}
}

// A placeholder in the scheme or host of a redirect lets a posted value
// send people to another site; such actions files do not load.
func TestParseRefusesPlaceholderInRedirectHost(t *testing.T) {
	for redirect, refused := range map[string]bool{
		"//{host}/done":                 true,
		"https://{host}/done":           true,
		"https://shop.{host}/done":      true,
		"https:{host}/done":             true,
		"{next}":                        true,
		"{scheme}://example.com/":       true,
		"/done?id={id}":                 false,
		"/users/{id}":                   false,
		"https://example.com/u/{id}":    false,
		"//example.com/done?who={name}": false,
		"https://example.com?next={id}": false,
		"done#{id}":                     false,
	} {
		_, err := Parse("a.yaml", []byte("actions:\n  a:\n    fields: {name: {type: text}}\n    redirect: \""+redirect+"\"\n"))
		if refused != (err != nil && strings.Contains(err.Error(), "redirect")) {
			t.Errorf("redirect %q: refused=%v, err %v", redirect, refused, err)
		}
	}
}

// TestParseRefusesThumbnailOfTypesItCannotDecode: a thumbnail step whose
// field accepts a type the worker cannot decode (HEIC, AVIF, SVG, any
// wildcard, or any type at all) stops the load, naming the action, the
// step, the field and the type.
func TestParseRefusesThumbnailOfTypesItCannotDecode(t *testing.T) {
	for _, tt := range []struct {
		upload string // the avatar upload's declaration; empty: none
		want   string // in the problem; empty: loads
	}{
		{"{types: [image/png, image/jpeg, image/gif, image/webp]}", ""},
		{"{types: [' image/jpeg', IMAGE/PNG]}", ""},
		{"{types: [image/png, image/heic]}", `action "a" field "avatar": step 2 (thumbnail): upload field "avatar" accepts image/heic, which the step cannot decode`},
		{"{types: [image/avif]}", "accepts image/avif, which the step cannot decode (it decodes image/gif, image/jpeg, image/png, image/webp)"},
		{"{types: [image/svg+xml]}", "accepts image/svg+xml"},
		{"{types: [image/*]}", "accepts image/*"},
		{"{types: [application/pdf]}", "accepts application/pdf"},
		{"{}", `step 2 (thumbnail): upload field "avatar" accepts any type`},
		{"", `step 2 (thumbnail): field "avatar" is not an upload field of the action`},
	} {
		file := "actions:\n  a:\n    fields: {name: {type: text}}\n"
		if tt.upload != "" {
			file += "    uploads:\n      avatar: " + strings.Replace(tt.upload, "{", "{max_size: 1MB, ", 1) + "\n"
		}
		file += "    steps:\n      - email: {to: a@example.com, subject: hi}\n      - thumbnail: {field: avatar, sizes: [64]}\n"
		_, err := Parse("a.yaml", []byte(file))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.upload, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: err %v, want it to say %q", tt.upload, err, tt.want)
		}
	}
}

// TestParseCaptchaActionAndScoreOnlyWhereTheProviderHasThem: hCaptcha
// answers carry no action and only reCAPTCHA v3 a score, so those settings
// elsewhere are refused with the reason, never silently unchecked.
func TestParseCaptchaActionAndScoreOnlyWhereTheProviderHasThem(t *testing.T) {
	_, err := Parse("captcha.yaml", []byte(`actions:
  a:
    captcha: {provider: hcaptcha, secret_env: S, site_key: k, action: apply}
  b:
    captcha: {provider: turnstile, secret_env: S, site_key: k, min_score: 0.7}
`))
	for _, w := range []string{"hCaptcha answers carry no action", "only reCAPTCHA v3 answers carry a score"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
	list, err := Parse("captcha.yaml", []byte(`actions:
  a:
    captcha: {provider: recaptcha, secret_env: S, site_key: k, action: apply}
  b:
    captcha: {provider: recaptcha, secret_env: S, site_key: k, min_score: 0.8}
`))
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(list...)
	a0, _ := reg.Get("a")
	b0, _ := reg.Get("b")
	if a := a0.Captcha; a.Action != "apply" || a.MinScore != DefaultMinScore {
		t.Errorf("a: %+v, want action apply and the default min_score", a)
	}
	if b := b0.Captcha; b.MinScore != 0.8 {
		t.Errorf("b: min_score %v, want 0.8", b.MinScore)
	}
}
