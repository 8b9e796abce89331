package actions

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/public.golden.json from the code")

// TestPublicDeclarationIsStable holds the public declaration (GET
// /actions/{name}/schema) of every action of the test actions files to the
// bytes recorded in testdata/public.golden.json, so regrouping the Go
// types or moving rules changes nothing a client reads. Refresh with
// -update only for an intended change of the wire.
func TestPublicDeclarationIsStable(t *testing.T) {
	files := []string{"testdata/actions.yaml", "testdata/uploads.yaml", "../internal/openapi/testdata/actions.yaml", "../client/testdata/actions.yaml", "../deployments/local/actions.yaml"}
	var got bytes.Buffer
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		list, err := Parse(file, data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, a := range list {
			b, err := json.Marshal(a.Public("https://forms.example/actions/"+a.Name, a.Theme))
			if err != nil {
				t.Fatal(err)
			}
			got.WriteString(filepath.Base(filepath.Dir(file)) + "/" + filepath.Base(file) + " " + a.Name + "\n")
			got.Write(b)
			got.WriteString("\n")
		}
	}
	golden := filepath.Join("testdata", "public.golden.json")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("the public declarations changed:\n got: %s\nwant: %s", got.Bytes(), want)
	}
}
