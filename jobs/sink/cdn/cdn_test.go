package cdn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// TestCloudflareSinkBatchesOnLocalServer: 31 tags and 31 paths go as
// batches of at most 30, each with its own idempotency key.
func TestCloudflareSinkBatchesOnLocalServer(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{} // Idempotency-Key -> items
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string][]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		for _, list := range body {
			got[r.Header.Get("Idempotency-Key")] += len(list)
		}
		mu.Unlock()
		io.WriteString(w, `{"success":true,"errors":[],"messages":[],"result":{"id":"z"}}`)
	}))
	defer srv.Close()
	sink, err := NewCloudflare(CloudflareConfig{APIURL: srv.URL, Token: "t", ZoneID: "z", SiteURL: "https://www.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	ev := submission.Event{ID: "1-0", Submission: "S"}
	for i := range 31 {
		ev.Tags = append(ev.Tags, fmt.Sprintf("t%d", i))
		ev.Paths = append(ev.Paths, fmt.Sprintf("/p/%d", i))
	}
	if err := sink.Purge(context.Background(), ev, "evt_S"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"evt_S.tags.0": 30, "evt_S.tags.1": 1, "evt_S.files.0": 30, "evt_S.files.1": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", got, want)
	}
}

// TestSinkAnswersOnLocalServer: which answers of a local provider API are
// retried and which fail the sink for good.
func TestSinkAnswersOnLocalServer(t *testing.T) {
	tests := []struct {
		status    int
		body      string
		permanent bool
		want      string
	}{
		{200, `{"success":true}`, false, ""},
		{200, `{"success":false,"errors":[{"code":1134,"message":"Zone not found"}]}`, true, "cloudflare refused the purge: 1134 Zone not found"},
		{200, `{"success":false}`, true, "cloudflare refused the purge: no error given"},
		{200, `<html>`, false, "not its JSON envelope"},
		{429, `{"success":false}`, false, "answered 429"},
		{500, `{"success":false,"errors":[{"code":10000,"message":"internal error"}]}`, false, "answered 500"},
		{503, ``, false, "answered 503"},
		{401, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`, true, "Authentication error"},
		{400, `{"success":false}`, true, "answered 400"},
		{302, ``, true, "answered 302"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			sink, err := NewCloudflare(CloudflareConfig{APIURL: srv.URL, Token: "t", ZoneID: "z", SiteURL: "https://www.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			err = sink.Purge(context.Background(), submission.Event{Tags: []string{"a"}}, "k")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, asynq.SkipRetry) != tc.permanent {
				t.Fatalf("err = %v, want %q, permanent %v", err, tc.want, tc.permanent)
			}
		})
	}
}

// TestFastlySinkRefusesTagsThatCannotBeKeys: a surrogate key cannot hold a
// space; nothing is sent and the step fails for good.
func TestFastlySinkRefusesTagsThatCannotBeKeys(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	defer srv.Close()
	sink, err := NewFastly(FastlyConfig{APIURL: srv.URL, Key: "k", ServiceID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	err = sink.Purge(context.Background(), submission.Event{Tags: []string{"ok", "two words"}}, "k")
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), `"two words"`) || calls != 0 {
		t.Fatalf("err = %v, %d calls", err, calls)
	}
}
