package conformance_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/conformance"
	"github.com/formq/formq/internal/testenv"
)

// samples are candidate values of one field, valid and invalid, as JSON
// values; absent is the field left out.
func samples(f *actions.Field) []any {
	var out []any
	str := []any{"", " ", "a", "ada", " ada", "ada ", "Ada Lovelace", "line\nbreak", "\u00a0ada", "ada\u0085", "5", 5, true, nil}
	switch f.Type {
	case "boolean":
		out = []any{true, false, "yes", 1}
	case "number":
		out = []any{0, 1, -1, 1.5, 1e300, -2.5e-3, "1", false}
	case "integer":
		out = []any{0, 7, -3, 1.5, 1 << 53, 1e20, "7"}
	case "email":
		out = []any{"ada@example.com", "Ada.Lovelace+forms@mail.example.org", "ada@example", "ada@@example.com", "a b@example.com",
			"Ada <ada@example.com>", " ada@example.com", "ada@example.com ", "ada@exa_mple.com", "@example.com", "ada@.com", ""}
	case "url":
		out = []any{"https://example.com/a?b=c#d", "http://example.com:8080", "HTTPS://Example.com", "ftp://example.com", "https://",
			"https://a b.com", "https://example.com/%zz", "https://example.com/%20", "example.com", " https://example.com"}
	case "date":
		out = []any{"2024-02-29", "2023-02-29", "2024-13-01", "24-01-01", "2024-1-01", "2024-01-01T00:00:00Z", " 2024-01-01"}
	default:
		out = str
	}
	for _, o := range f.Options {
		out = append(out, o.Value)
	}
	if f.Min != nil {
		out = append(out, *f.Min, *f.Min-1, *f.Min-0.5)
	}
	if f.Max != nil {
		out = append(out, *f.Max, *f.Max+1, *f.Max+0.5)
	}
	for _, n := range []*int{f.MinLength, f.MaxLength} {
		if n != nil {
			for _, k := range []int{*n - 1, *n, *n + 1} {
				if k >= 0 {
					out = append(out, strings.Repeat("x", k), strings.Repeat("é", k))
				}
			}
		}
	}
	for _, x := range f.NotIn {
		out = append(out, x, strings.ToUpper(x), " "+x, x+"x", "ada@"+x, "ada@"+strings.ToUpper(x), "ada@sub."+x)
	}
	if f.Default != "" {
		out = append(out, f.Default)
	}
	if f.Multiple && f.Type != "boolean" {
		many := []any{[]any{}, []any{""}}
		for _, v := range out {
			many = append(many, []any{v}, []any{v, v})
		}
		out = append(many, "ada")
	}
	return append(out, absent{})
}

// absent marks a field left out of a sample.
type absent struct{}

// formValues is a sample as a front end posts it: each value as text.
func formValues(v map[string]any) map[string][]string {
	out := map[string][]string{}
	text := func(x any) string {
		switch y := x.(type) {
		case string:
			return y
		case float64:
			return strconv.FormatFloat(y, 'g', -1, 64)
		case nil:
			return ""
		}
		return fmt.Sprint(x)
	}
	for k, x := range v {
		if list, ok := x.([]any); ok {
			for _, e := range list {
				out[k] = append(out[k], text(e))
			}
			continue
		}
		out[k] = []string{text(x)}
	}
	return out
}

// keeps reports whether the server accepts a sample and keeps it as sent:
// Validate finds no problem and its values are the sample's (a left-out
// optional box is false, a left-out list empty).
func keeps(a *actions.Action, sample map[string]any) bool {
	values, errs := a.Validate(formValues(sample))
	if len(errs) > 0 {
		return false
	}
	for _, f := range a.Fields {
		want, sent := sample[f.Name]
		got, kept := values[f.Name]
		switch {
		case !sent && f.Type == "boolean":
			want, sent = false, true
		case !sent && f.Multiple:
			want, sent = []any{}, true
		}
		if sent != kept {
			return false
		}
		if !sent {
			continue
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		var gv, wv any
		_ = json.Unmarshal(g, &gv)
		_ = json.Unmarshal(w, &wv)
		if !reflect.DeepEqual(gv, wv) {
			return false
		}
	}
	return true
}

// TestActionJSONSchemasAgreeWithTheServer: each action's JSON Schema, of
// every actions file in the repository (examples included), compiles
// under ajv in strict mode, and ajv and the server agree on sample values
// both ways: ajv accepts a sample exactly when the server accepts it as
// a form and keeps it unchanged.
func TestActionJSONSchemasAgreeWithTheServer(t *testing.T) {
	tl := conformance.Install(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var cases []ajvCase
	var acts []*actions.Action
	var server [][]bool
	paths := slices.Sorted(maps.Keys(actionsFiles(t)))
	examples, _ := filepath.Glob(filepath.Join(root, "examples", "*", "*actions.yaml"))
	examples2, _ := filepath.Glob(filepath.Join(root, "examples", "*", "*", "actions.yaml"))
	for _, p := range append(examples, examples2...) {
		rel, _ := filepath.Rel(root, p)
		paths = append(paths, rel)
	}
	for _, rel := range paths {
		list, err := actions.LoadFile(filepath.Join(root, rel))
		if err != nil {
			continue // files the API refuses on purpose
		}
		for _, a := range list {
			base := map[string]any{}
			for _, f := range a.Fields {
				for _, v := range samples(f) {
					if _, ok := v.(absent); ok {
						continue
					}
					probe := maps.Clone(base)
					probe[f.Name] = v
					mirror(a, probe)
					var fv map[string]any
					_ = json.Unmarshal(must(json.Marshal(probe)), &fv)
					if vals, errs := a.Validate(formValues(fv)); len(errs[f.Name]) == 0 && vals[f.Name] != nil {
						base[f.Name] = v
						break
					}
				}
			}
			var values []any
			var verdicts []bool
			for _, f := range a.Fields {
				for _, v := range samples(f) {
					s := maps.Clone(base)
					if _, ok := v.(absent); ok {
						delete(s, f.Name)
					} else {
						s[f.Name] = v
					}
					mirror(a, s)
					var sv map[string]any
					if err := json.Unmarshal(must(json.Marshal(s)), &sv); err != nil {
						t.Fatal(err)
					}
					values = append(values, sv)
					verdicts = append(verdicts, keeps(a, sv))
				}
			}
			schema := a.JSONSchema("")
			for _, f := range a.Fields {
				if f.EqualsField != "" && !strings.Contains(schema["description"].(string), f.Name+": must be the same as "+f.EqualsField) {
					t.Errorf("%s %s: the schema's description does not say that %s repeats %s", rel, a.Name, f.Name, f.EqualsField)
				}
			}
			cases = append(cases, ajvCase{Name: rel + " " + a.Name, Schema: schema, Values: values})
			acts = append(acts, a)
			server = append(server, verdicts)
		}
	}
	if len(cases) < 10 {
		t.Fatalf("only %d actions found", len(cases))
	}
	total, accepted := 0, 0
	for i, res := range Ajv(t, tl, cases) {
		if res.CompileError != nil {
			t.Errorf("%s: ajv strict refuses the schema: %s", res.Name, *res.CompileError)
			continue
		}
		for j, ok := range res.Valid {
			total++
			if ok {
				accepted++
			}
			sample, _ := json.Marshal(cases[i].Values[j])
			switch {
			case ok && !server[i][j]:
				_, errs := acts[i].Validate(formValues(cases[i].Values[j].(map[string]any)))
				t.Errorf("%s: ajv accepts %s, which the server refuses or changes (%v)", res.Name, sample, errs)
			case !ok && server[i][j]:
				t.Errorf("%s: ajv refuses %s, which the server keeps as sent: %s", res.Name, sample, *res.Errors[j])
			}
		}
	}
	t.Logf("ajv strict: %d action schemas compile; %d samples, %d valid and %d invalid, judged alike by ajv and the server", len(cases), total, accepted, total-accepted)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// mirror gives each field that must repeat another (equals_field, which
// JSON Schema cannot say) the other's value in a sample: the schema's
// description states that rule, the samples hold it.
func mirror(a *actions.Action, sample map[string]any) {
	for _, f := range a.Fields {
		if f.EqualsField == "" {
			continue
		}
		if v, ok := sample[f.EqualsField]; ok {
			sample[f.Name] = v
		} else {
			delete(sample, f.Name)
		}
	}
}
