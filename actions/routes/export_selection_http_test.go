package routes_test

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
)

// TestExportOfASelection: ?ids= exports exactly the selected submissions,
// newest first, as CSV with the action's columns or as NDJSON; a CSV of
// two actions, a selection naming another action's submission and one
// over 500 are refused; ids no longer stored are left out.
func TestExportOfASelection(t *testing.T) {
	st := startWithActions(t, inboxActions, nil)
	post := func(action, email string) string {
		t.Helper()
		form := url.Values{"email": {email}, "message": {"hello from " + email}}
		resp, raw := teststack.Post(t, st.APIURL+"/actions/"+action, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post: %d %s", resp.StatusCode, raw)
		}
		var acc struct{ Submission struct{ ID string } }
		json.Unmarshal(raw, &acc)
		return acc.Submission.ID
	}
	a, b, c, other := post("contact", "a@example.com"), post("contact", "b@example.com"), post("contact", "c@example.com"), post("apply", "d@example.com")
	teststack.WaitFor(t, 30*time.Second, "four stored submissions", func() bool {
		var l listAnswer
		admin(t, st, "GET", "/admin/submissions", &l)
		return len(l.Submissions) == 4
	})
	export := func(query string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", st.APIURL+"/admin/submissions/export?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}

	code, body := export("format=csv&ids=" + a + "," + c + "&ids=NOSUCHID")
	if code != http.StatusOK {
		t.Fatalf("CSV of a selection: %d %s", code, body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 3 || strings.Join(rows[0][:4], ",") != "id,received_at,email,message" || rows[1][0] != c || rows[2][0] != a || rows[1][2] != "c@example.com" {
		t.Errorf("CSV of a and c, newest first: %v %q", err, rows)
	}

	code, body = export("format=ndjson&ids=" + b + "&ids=" + other)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	var first, second struct{ ID, Action string }
	if code != http.StatusOK || len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[1]), &second) != nil ||
		first.ID != other || second.ID != b || first.Action != "apply" || second.Action != "contact" {
		t.Errorf("NDJSON of two actions' submissions: %d %s", code, body)
	}

	for _, q := range []string{"format=csv&ids=" + b + "," + other, "action=contact&ids=" + other, "ids=" + strings.Repeat("x,", 501)} {
		if code, body := export(q); code != http.StatusBadRequest {
			t.Errorf("export?%s: %d %s, want 400", q, code, body)
		}
	}
}
