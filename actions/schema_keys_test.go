package actions

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSchemaHasEveryKeyOfTheParser compares the keys the schema declares
// with the keys the parser reads, so a key added to one and not the other
// fails here.
func TestSchemaHasEveryKeyOfTheParser(t *testing.T) {
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(Schema, &schema); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		raw   any
		keys  map[string]json.RawMessage
		rules []fieldRule // keys the parser reads through fieldRules
	}{
		{"file", rawFile{}, schema.Properties, nil},
		{"action", rawAction{}, schema.Defs["action"].Properties, nil},
		{"field", rawField{}, schema.Defs["field"].Properties, fieldRules},
		{"upload", rawUpload{}, schema.Defs["upload"].Properties, nil},
		{"upload profile", rawProfile{}, schema.Defs["uploadProfile"].Properties, nil},
		{"spam", rawSpam{}, schema.Defs["spam"].Properties, nil},
	}
	for _, tc := range cases {
		var parser []string
		typ := reflect.TypeOf(tc.raw)
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			parser = append(parser, tag)
		}
		for _, r := range tc.rules {
			parser = append(parser, r.key)
		}
		var declared []string
		for k := range tc.keys {
			declared = append(declared, k)
		}
		slices.Sort(parser)
		slices.Sort(declared)
		if !slices.Equal(parser, declared) {
			t.Errorf("%s: the parser reads %v, the schema declares %v", tc.name, parser, declared)
		}
	}
}
