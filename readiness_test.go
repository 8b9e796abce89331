package formq_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

// answerBound is how long /readyz and a refused submission may take while
// a dependency is down. formq aims at well under 1 s (each readiness check
// has 750 ms); the bound leaves room for a loaded test machine.
const answerBound = 1500 * time.Millisecond

// TestReadinessAndSubmissionsAnswerWhileRedisOrS3IsDown stops the stack's
// own S3 and Redis (killed, and S3 also hung with SIGSTOP): /readyz on the
// API and the worker answers 503 naming the dependency within the bound,
// new submissions are refused with 503 and Retry-After within the bound,
// and everything recovers when the server is back.
func TestReadinessAndSubmissionsAnswerWhileRedisOrS3IsDown(t *testing.T) {
	r, redisSrv := testenv.StartPrivateRedis(t)
	s, s3Srv := testenv.StartPrivateS3(t)
	st := teststack.StartOn(t, r, s, nil)
	png, err := os.ReadFile("testdata/avatar.png")
	if err != nil {
		t.Fatal(err)
	}
	post := func(t *testing.T) (int, http.Header, time.Duration) {
		body, ctype := teststack.MultipartBody(t, map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"}, map[string][]byte{"avatar": png})
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, st.APIURL+"/actions/create-user", body)
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", "application/json")
		// A submission that started before the API noticed a hung S3
		// waits on it; the client gives up rather than the test hanging.
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Logf("post: %v", err)
			return 0, nil, time.Since(start)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header, time.Since(start)
	}
	ready := func(t *testing.T, base string) (int, map[string]string, time.Duration) {
		start := time.Now()
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("readyz: %v", err)
		}
		defer resp.Body.Close()
		var out struct {
			OK     bool              `json:"ok"`
			Checks map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("readyz body: %v", err)
		}
		return resp.StatusCode, out.Checks, time.Since(start)
	}
	bases := map[string]string{"api": st.APIURL, "worker": st.WorkerURL}
	expectDown := func(t *testing.T, dep string) {
		t.Helper()
		for name, base := range bases {
			code, checks, took := ready(t, base)
			t.Logf("%s /readyz with %s down: %d %v in %s", name, dep, code, checks, took)
			if code != http.StatusServiceUnavailable || checks[dep] != "unavailable" {
				t.Errorf("%s /readyz with %s down: %d %v, want 503 with %s unavailable", name, dep, code, checks, dep)
			}
			if took > answerBound {
				t.Errorf("%s /readyz took %s with %s down, want under %s", name, took, dep, answerBound)
			}
		}
	}
	expectRefused := func(t *testing.T, dep string) {
		t.Helper()
		// The API notices after two failed probes (up to about 2 s for a
		// hung server); then every new submission is refused at once. A
		// submission that started before that waits on the hung server
		// until the client gives up (10 s), so allow for one of those.
		teststack.WaitFor(t, 30*time.Second, "a submission refused with "+dep+" down", func() bool {
			code, _, _ := post(t)
			return code == http.StatusServiceUnavailable
		})
		for range 5 {
			code, h, took := post(t)
			t.Logf("submission with %s down: %d in %s", dep, code, took)
			if code != http.StatusServiceUnavailable || h == nil || h.Get("Retry-After") == "" {
				t.Errorf("submission with %s down: %d, want 503 with Retry-After", dep, code)
			}
			if took > answerBound {
				t.Errorf("refused submission took %s with %s down, want under %s", took, dep, answerBound)
			}
		}
	}
	expectRecovered := func(t *testing.T, dep string) {
		t.Helper()
		for name, base := range bases {
			teststack.WaitFor(t, 20*time.Second, name+" ready again after "+dep+" is back", func() bool {
				code, _, _ := ready(t, base)
				return code == http.StatusOK
			})
		}
		teststack.WaitFor(t, 10*time.Second, "a submission accepted after "+dep+" is back", func() bool {
			code, _, _ := post(t)
			return code == http.StatusAccepted
		})
	}

	for name, base := range bases {
		if code, checks, _ := ready(t, base); code != http.StatusOK || checks["redis"] != "ok" || checks["s3"] != "ok" {
			t.Fatalf("%s /readyz at start: %d %v", name, code, checks)
		}
	}
	if code, _, _ := post(t); code != http.StatusAccepted {
		t.Fatalf("submission at start: %d", code)
	}

	t.Run("s3 killed", func(t *testing.T) {
		s3Srv.Kill(t)
		expectDown(t, "s3")
		expectRefused(t, "s3")
		s3Srv.Start(t)
		expectRecovered(t, "s3")
	})
	t.Run("s3 hung", func(t *testing.T) {
		s3Srv.Pause(t)
		expectDown(t, "s3")
		expectRefused(t, "s3")
		s3Srv.Resume(t)
		expectRecovered(t, "s3")
	})
	t.Run("redis killed", func(t *testing.T) {
		redisSrv.Kill(t)
		expectDown(t, "redis")
		expectRefused(t, "redis")
		redisSrv.Start(t)
		expectRecovered(t, "redis")
	})
}
