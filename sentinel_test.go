package formq_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

// TestSentinelFailover runs the API and a worker on a primary found
// through a real redis-sentinel: submissions are accepted and processed,
// the primary is SIGKILLed, the sentinel promotes the replica, and both
// processes follow it: new submissions are accepted and processed, and
// the one acknowledged before the kill completes.
func TestSentinelFailover(t *testing.T) {
	sen := testenv.StartSentinel(t)
	s := testenv.StartS3(t)
	st := teststack.StartOn(t, testenv.Redis{}, s, map[string]string{"FORMQ_REDIS_URL": sen.URL()})
	post := func() (int, string) {
		body, ctype := teststack.MultipartBody(t, map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"}, nil)
		req, _ := http.NewRequest(http.MethodPost, st.APIURL+"/actions/create-user", body)
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", "application/json")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		var out struct {
			Submission struct {
				StatusURL string `json:"statusUrl"`
			} `json:"submission"`
		}
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out.Submission.StatusURL
	}
	status := func(statusURL string) string {
		req, _ := http.NewRequest(http.MethodGet, statusURL, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out struct {
			Submission struct{ Status string } `json:"submission"`
		}
		_ = json.Unmarshal(b, &out)
		return out.Submission.Status
	}
	code, before := post()
	if code != http.StatusAccepted {
		t.Fatalf("submission through the sentinel's primary: %d", code)
	}
	teststack.WaitFor(t, 30*time.Second, "the first submission completed", func() bool { return status(before) == "completed" })

	sen.Primary.Kill(t)
	var after string
	teststack.WaitFor(t, 60*time.Second, "a submission accepted by the promoted replica", func() bool {
		code, id := post()
		after = id
		return code == http.StatusAccepted
	})
	teststack.WaitFor(t, 60*time.Second, "the submission after the failover completed", func() bool { return status(after) == "completed" })
	teststack.WaitFor(t, 15*time.Second, "the submission acknowledged before the failover still completed", func() bool {
		return status(before) == "completed"
	})
}
