package actions

import (
	"errors"
	"reflect"
	"regexp"
	"testing"

	validation "github.com/go-ozzo/ozzo-validation/v4"
)

func ptr[T any](v T) *T { return &v }

func TestFieldValidation(t *testing.T) {
	tests := []struct {
		name   string
		field  Field
		raw    []string
		want   any
		errors []string
	}{
		{"text trimmed", Field{Type: "text"}, []string{"  Ada  "}, "Ada", nil},
		{"text empty optional", Field{Type: "text"}, []string{""}, nil, nil},
		{"text missing optional", Field{Type: "text"}, nil, nil, nil},
		{"required missing", Field{Type: "text", FieldRules: FieldRules{Required: true}}, nil, nil, []string{"Name is required"}},
		{"required blank", Field{Type: "text", FieldRules: FieldRules{Required: true}}, []string{"   "}, nil, []string{"Name is required"}},
		{"required custom", Field{Type: "text", Messages: map[string]string{"required": "Tell us your name"}, FieldRules: FieldRules{Required: true}}, nil, nil, []string{"Tell us your name"}},
		{"min_length", Field{Type: "text", FieldRules: FieldRules{MinLength: ptr(2)}}, []string{"A"}, nil, []string{"Name must be at least 2 characters"}},
		{"min_length counts runes", Field{Type: "text", FieldRules: FieldRules{MinLength: ptr(2)}}, []string{"日本"}, "日本", nil},
		{"max_length", Field{Type: "text", FieldRules: FieldRules{MaxLength: ptr(3)}}, []string{"Abcd"}, nil, []string{"Name must be at most 3 characters"}},
		{"min_length custom with param", Field{Type: "text", Messages: map[string]string{"min_length": "{label}: {min_length}+ please"}, FieldRules: FieldRules{MinLength: ptr(5)}}, []string{"abc"}, nil, []string{"Name: 5+ please"}},
		{"textarea keeps spaces", Field{Type: "textarea"}, []string{"  two\nlines "}, "  two\nlines ", nil},
		{"pattern ok", Field{Type: "text", FieldRules: FieldRules{Pattern: regexp.MustCompile(`^(?:[A-Z]{3})$`)}}, []string{"ABC"}, "ABC", nil},
		{"pattern bad", Field{Type: "text", FieldRules: FieldRules{Pattern: regexp.MustCompile(`^(?:[A-Z]{3})$`)}}, []string{"abc"}, nil, []string{"Name has the wrong format"}},
		{"email ok", Field{Type: "email"}, []string{"ada@example.com"}, "ada@example.com", nil},
		{"email bad", Field{Type: "email"}, []string{"ada@"}, nil, []string{"Name must be a valid email address"}},
		{"email display name refused", Field{Type: "email"}, []string{"Ada <ada@example.com>"}, nil, []string{"Name must be a valid email address"}},
		{"email no dot domain", Field{Type: "email"}, []string{"ada@localhost"}, nil, []string{"Name must be a valid email address"}},
		{"url ok", Field{Type: "url"}, []string{"https://example.com/x"}, "https://example.com/x", nil},
		{"url javascript refused", Field{Type: "url"}, []string{"javascript:alert(1)"}, nil, []string{"Name must be a valid http or https URL"}},
		{"number", Field{Type: "number"}, []string{"3.5"}, 3.5, nil},
		{"number bad", Field{Type: "number"}, []string{"three"}, nil, []string{"Name must be a number"}},
		{"number NaN", Field{Type: "number"}, []string{"NaN"}, nil, []string{"Name must be a number"}},
		{"number min", Field{Type: "number", FieldRules: FieldRules{Min: ptr(1.0)}}, []string{"0.5"}, nil, []string{"Name must be at least 1"}},
		{"number max", Field{Type: "number", FieldRules: FieldRules{Max: ptr(10.0)}}, []string{"11"}, nil, []string{"Name must be at most 10"}},
		{"integer", Field{Type: "integer"}, []string{"42"}, int64(42), nil},
		{"integer fraction", Field{Type: "integer"}, []string{"4.2"}, nil, []string{"Name must be a whole number"}},
		{"integer min custom", Field{Type: "integer", Messages: map[string]string{"min": "Too young"}, FieldRules: FieldRules{Min: ptr(13.0)}}, []string{"12"}, nil, []string{"Too young"}},
		{"boolean on", Field{Type: "boolean"}, []string{"on"}, true, nil},
		{"boolean true", Field{Type: "boolean"}, []string{"true"}, true, nil},
		{"boolean absent", Field{Type: "boolean"}, nil, false, nil},
		{"boolean required absent", Field{Type: "boolean", FieldRules: FieldRules{Required: true}}, nil, nil, []string{"Name is required"}},
		{"boolean required false", Field{Type: "boolean", FieldRules: FieldRules{Required: true}}, []string{"false"}, nil, []string{"Name is required"}},
		{"boolean garbage", Field{Type: "boolean"}, []string{"maybe"}, nil, []string{"Name must be yes or no"}},
		{"date ok", Field{Type: "date"}, []string{"2026-11-24"}, "2026-11-24", nil},
		{"date bad", Field{Type: "date"}, []string{"24/11/2026"}, nil, []string{"Name must be a date (YYYY-MM-DD)"}},
		{"date impossible", Field{Type: "date"}, []string{"2026-02-30"}, nil, []string{"Name must be a date (YYYY-MM-DD)"}},
		{"select ok", Field{Type: "select", FieldRules: FieldRules{Options: []Option{{Value: "a"}, {Value: "b"}}}}, []string{"b"}, "b", nil},
		{"select bad", Field{Type: "select", FieldRules: FieldRules{Options: []Option{{Value: "a"}}}}, []string{"z"}, nil, []string{"Name must be one of the listed choices"}},
		{"select multiple", Field{Type: "select", Multiple: true, FieldRules: FieldRules{Options: []Option{{Value: "a"}, {Value: "b"}}}}, []string{"a", "b"}, []string{"a", "b"}, nil},
		{"select multiple one bad", Field{Type: "select", Multiple: true, FieldRules: FieldRules{Options: []Option{{Value: "a"}}}}, []string{"a", "x", "y"}, nil, []string{"Name must be one of the listed choices"}},
		{"multiple none", Field{Type: "text", Multiple: true}, nil, []string{}, nil},
		{"multiple required none", Field{Type: "text", Multiple: true, FieldRules: FieldRules{Required: true}}, nil, nil, []string{"Name is required"}},
		{"duplicate single value", Field{Type: "text"}, []string{"a", "b"}, nil, []string{"Name was sent more than once"}},
		{"hidden", Field{Type: "hidden"}, []string{"x"}, "x", nil},
		{"password kept untrimmed", Field{Type: "password", FieldRules: FieldRules{MinLength: ptr(3)}}, []string{" pw "}, " pw ", nil},
		{"invalid utf-8", Field{Type: "text"}, []string{"a\xffb"}, nil, []string{"Name must be valid text"}},
		{"all problems at once", Field{Type: "text", FieldRules: FieldRules{MinLength: ptr(5), Pattern: regexp.MustCompile(`^(?:[0-9]+)$`)}}, []string{"ab"}, nil,
			[]string{"Name must be at least 5 characters", "Name has the wrong format"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.field
			f.Name, f.Label = "name", "Name"
			a := &Action{Name: "t", Fields: []*Field{&f}}
			values, errs := a.Validate(map[string][]string{"name": tc.raw})
			if !reflect.DeepEqual([]string(errs["name"]), tc.errors) {
				t.Fatalf("errors = %q, want %q", errs["name"], tc.errors)
			}
			if got := values["name"]; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("value = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestGoRulesAndUnknownFields(t *testing.T) {
	notAdmin := validation.By(func(v any) error {
		if v == "admin" {
			return errors.New("That name is taken")
		}
		return nil
	})
	a := &Action{Name: "t", Fields: []*Field{{Name: "user", Label: "User", Type: "text", Rules: []validation.Rule{notAdmin}}}}
	_, errs := a.Validate(map[string][]string{"user": {"admin"}, "extra": {"x"}})
	if len(errs) != 1 || errs["user"][0] != "That name is taken" {
		t.Fatalf("errs = %v", errs)
	}
	values, errs := a.Validate(map[string][]string{"user": {"ada"}, "extra": {"x"}})
	if len(errs) != 0 || values["user"] != "ada" || values["extra"] != nil {
		t.Fatalf("values %v errs %v: unknown fields must be dropped", values, errs)
	}
}

func TestUploadMessages(t *testing.T) {
	u := &Upload{Name: "avatar", Label: "Avatar", MaxSize: 5 << 20, MaxFiles: 1, Types: []string{"image/png", "image/webp"}}
	if got := u.TooLargeMessage(); got != "File too large (max 5MB)" {
		t.Errorf("too large: %q", got)
	}
	if got := u.TypeMessage("text/html"); got != "File type HTML (text/html) not allowed (allowed: PNG or WebP)" {
		t.Errorf("type: %q", got)
	}
	if got := u.TooManyMessage(); got != "Too many files (max 1)" {
		t.Errorf("count: %q", got)
	}
	u.Messages = map[string]string{"max_size": "Keep it under {max_size}"}
	if got := u.TooLargeMessage(); got != "Keep it under 5MB" {
		t.Errorf("custom: %q", got)
	}
}
