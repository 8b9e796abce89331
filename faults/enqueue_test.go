//go:build faults

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
)

// TestAPIKilledAfterEnqueue SIGKILLs the API after it queued a
// submission and before it answered: Redis's replies reach the API
// through a fault proxy 500 ms late, the suite sees the task appear in
// Redis and kills the API at once. The client, cut off, sends the same
// form again to a new API process, waiting Retry-After after each 503,
// until it is acknowledged (90 s at most). With an Idempotency-Key header
// it must get exactly one submission, the one queued before the kill,
// also when it sends the form again only 2.5 minutes later (longer than a
// claim lasts while a request is read); without one it gets a second
// submission (the row says how many).
func TestAPIKilledAfterEnqueue(t *testing.T) {
	for _, tc := range []struct {
		name       string
		withKey    bool
		retryAfter time.Duration
	}{
		{"key", true, 0},
		{"key-late", true, 150 * time.Second},
		{"nokey", false, 0},
	} {
		withKey := tc.withKey
		name := "API SIGKILL after the enqueue, before the answer; client retries without an idempotency key"
		if withKey {
			name = "API SIGKILL after the enqueue, before the answer; client retries with an Idempotency-Key"
		}
		if tc.retryAfter > 0 {
			name += fmt.Sprintf(", the first retry %s after the kill", tc.retryAfter)
		}
		t.Run(tc.name, func(t *testing.T) {
			started := time.Now()
			r := testenv.StartRedis(t)
			rdb := r.Client(t)
			px := newFaultProxy(t, "redis", r.Addr)
			st := newStack(t, fmt.Sprintf("redis://%s/%d", px.Addr(), r.DB), testenv.StartS3(t), nil)
			api := start(t, st.apiBin, "api", st.env)
			direct := maps.Clone(st.env)
			direct["FORMQ_REDIS_URL"] = r.URL()
			_ = start(t, st.workerBin, "worker", direct)

			form := url.Values{"name": {"killed after the enqueue"}}.Encode()
			post := func(apiURL string) (*http.Response, string, error) {
				req, _ := http.NewRequest(http.MethodPost, apiURL+"/actions/hook", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Accept", "application/json")
				if withKey {
					req.Header.Set("Idempotency-Key", "faults-kill-after-enqueue")
				}
				resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
				if err != nil {
					return nil, "", err
				}
				defer resp.Body.Close()
				var out struct {
					Submission struct{ ID string } `json:"submission"`
				}
				b, _ := io.ReadAll(resp.Body)
				json.Unmarshal(b, &out)
				return resp, out.Submission.ID, nil
			}

			heal := px.add(t, []toxic{{"latency", "downstream", map[string]any{"latency": 500}}})
			first := make(chan error, 1)
			go func() {
				resp, id, err := post(api.URL)
				if err == nil {
					err = fmt.Errorf("answered %d (%s) before the kill", resp.StatusCode, id)
				}
				first <- err
			}()
			ctx := context.Background()
			deadline := time.Now().Add(30 * time.Second)
			for {
				keys, _ := rdb.Keys(ctx, "asynq:{*}:t:*").Result()
				if len(keys) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the submission never reached the queue")
				}
				time.Sleep(2 * time.Millisecond)
			}
			api.Kill()
			killed := time.Now()
			heal()
			row := row{scenario: name, posted: 1, backAfter: -1}
			if err := <-first; strings.Contains(err.Error(), "before the kill") {
				t.Fatalf("the first request: %v", err)
			}

			// The client sends the form again until it is acknowledged.
			api2 := start(t, st.apiBin, "api-2", st.env)
			time.Sleep(tc.retryAfter)
			var acked string
			var slowest time.Duration
			for end := time.Now().Add(90 * time.Second); acked == "" && time.Now().Before(end); {
				sent := time.Now()
				resp, id, err := post(api2.URL)
				row.posted++
				slowest = max(slowest, time.Since(sent))
				switch {
				case err != nil:
					row.otherFailure++
					time.Sleep(time.Second)
				case resp.StatusCode == http.StatusAccepted && id != "":
					acked = id
				case resp.StatusCode == http.StatusServiceUnavailable:
					row.unavailable++
					wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
					if wait == 0 {
						row.noRetryAfter++
					}
					time.Sleep(time.Duration(max(wait, 1)) * time.Second)
				default:
					row.otherFailure++
					time.Sleep(time.Second)
				}
			}
			if acked != "" {
				row.acked = 1
				row.backAfter = time.Since(killed)
			}
			row.slowest202 = slowest

			// Every submission queued, each to its one event.
			var seen map[string]int
			for wait := time.Now().Add(30 * time.Second); ; {
				s, _, err := events(ctx, rdb)
				if err == nil {
					seen = s
				}
				if time.Now().After(wait) || (seen[acked] > 0 && len(seen) >= 1) {
					// Give a second submission, if any, time to show too.
					if time.Now().After(wait) || time.Since(killed) > 5*time.Second {
						break
					}
				}
				time.Sleep(250 * time.Millisecond)
			}
			row.dup = max(0, len(seen)-1)
			if acked != "" && seen[acked] == 0 {
				row.lost = 1
			}
			row.took = time.Since(started)
			expect(t, &row.failed, acked != "", "the retries were never acknowledged (%d 503s, %d other)", row.unavailable, row.otherFailure)
			expect(t, &row.failed, row.lost == 0, "the acknowledged submission %s has no event", acked)
			expect(t, &row.failed, row.noRetryAfter == 0 && row.otherFailure == 0, "%d 503s without Retry-After, %d other answers", row.noRetryAfter, row.otherFailure)
			if withKey {
				expect(t, &row.failed, len(seen) == 1, "%d submissions for one idempotency key", len(seen))
			} else {
				expect(t, &row.failed, len(seen) == 2, "%d submissions, want 2 (the one queued before the kill and the retry's)", len(seen))
			}
			record(t, row)
		})
	}
}
