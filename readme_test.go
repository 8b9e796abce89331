package formq

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/formq/formq/internal/openapi"
)

// TestReadmeListsEveryEndpoint holds the README's endpoint table to the
// OpenAPI document, which its own tests hold to the routes the API
// registers: an endpoint added without a line in the README fails here.
func TestReadmeListsEveryEndpoint(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "\n## Endpoints\n")
	if !ok {
		t.Fatal("README.md has no '## Endpoints' section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Paths) == 0 {
		t.Fatal("the OpenAPI document lists no paths")
	}
	for path, ops := range doc.Paths {
		if path == "/admin/queues/{path}" {
			continue // the dashboard's own pages, listed as /admin/queues/
		}
		want := path
		if path == "/admin/queues" {
			want = "/admin/queues/"
		}
		for method := range ops {
			method = strings.ToUpper(method)
			if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, method) {
				continue // parameters, HEAD, OPTIONS
			}
			if !strings.Contains(table, "`"+method+" "+want+"`") && !strings.Contains(table, "`"+want+"`") {
				t.Errorf("README.md's endpoint table has no line for %s %s", method, want)
			}
		}
	}
}
