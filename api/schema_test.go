package api_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/api"
)

// TestSchemaFilePrintsTheActionsJSONSchema: `api schema FILE ACTION`
// prints the action's JSON Schema; without ACTION, every action's by
// name; an unknown action is an error naming it.
func TestSchemaFilePrintsTheActionsJSONSchema(t *testing.T) {
	const file = "../client/testdata/actions.yaml"
	list, err := actions.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	normal := func(v any) any {
		b, _ := json.Marshal(v)
		var out any
		_ = json.Unmarshal(b, &out)
		return out
	}
	var one bytes.Buffer
	if err := api.SchemaFile(file, list[0].Name, &one); err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(one.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, one.Bytes())
	}
	if want := normal(list[0].JSONSchema("")); !reflect.DeepEqual(got, want) {
		t.Errorf("api schema %s %s printed\n%s\nwant %v", file, list[0].Name, one.Bytes(), want)
	}
	var all bytes.Buffer
	if err := api.SchemaFile(file, "", &all); err != nil {
		t.Fatal(err)
	}
	var byName map[string]any
	if err := json.Unmarshal(all.Bytes(), &byName); err != nil || len(byName) != len(list) {
		t.Fatalf("without an action: %d schemas (%v), want %d", len(byName), err, len(list))
	}
	if err := api.SchemaFile(file, "nope", &all); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("an unknown action: %v", err)
	}
}
