package formq_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/formq/formq/internal/teststack"
)

// TestDefaultMaxBodyFitsDeclaredUploads starts formq with an action whose
// upload is larger than 10MB and which sets no max_body: the API starts,
// takes a file over 10MB, and holds the request to the limit that follows
// from the declaration (16MB of upload + 1MB) rather than to 10MB.
func TestDefaultMaxBodyFitsDeclaredUploads(t *testing.T) {
	file := filepath.Join(t.TempDir(), "actions.yaml")
	decl := "actions:\n  big:\n    uploads:\n      blob: {max_size: 16MB, required: true}\n"
	if err := os.WriteFile(file, []byte(decl), 0o600); err != nil {
		t.Fatal(err)
	}
	st := teststack.Start(t, map[string]string{"FORMQ_ACTIONS": file})
	json := map[string]string{"Accept": "application/json"}

	blob := bytes.Repeat([]byte("formq "), 12<<20/6) // 12 MiB of text
	body, ctype := teststack.MultipartBody(t, nil, map[string][]byte{"blob": blob})
	resp, raw := teststack.Post(t, st.APIURL+"/actions/big", body, ctype, json)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("12MB file: status %d, body %.300s", resp.StatusCode, raw)
	}

	over := bytes.Repeat([]byte("formq "), 18<<20/6) // past 16MB + 1MB
	body, ctype = teststack.MultipartBody(t, nil, map[string][]byte{"blob": over})
	resp, raw = teststack.Post(t, st.APIURL+"/actions/big", body, ctype, json)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), `"payload_too_large"`) || !strings.Contains(string(raw), "17MB") {
		t.Fatalf("18MB body: status %d, body %.300s; want 413 payload_too_large naming the 17MB limit", resp.StatusCode, raw)
	}
}
