//go:build faults

package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
)

// TestRedisAtMaxmemory runs the queue's Redis with a 32 MB maxmemory and
// noeviction (the setting asynq needs), fills it with other keys for 10 s
// under 50 posts/s and then frees them. Expected: while it is full posts
// are refused with 503 and Retry-After (Redis answers OOM to writes),
// none hangs or fails otherwise, nothing acknowledged is lost or doubled,
// and posts are acknowledged again once memory is free.
func TestRedisAtMaxmemory(t *testing.T) {
	started := time.Now()
	r, _ := testenv.StartPrivateRedis(t, "--maxmemory", "32mb")
	st := newStack(t, r.URL(), testenv.StartS3(t), nil)
	api := start(t, st.apiBin, "api", st.env)
	_ = start(t, st.workerBin, "worker", st.env)
	rdb := r.Client(t)
	ctx := context.Background()
	freed := make(chan time.Time, 1)
	var filled int
	var fillErr error
	go func() {
		time.Sleep(5 * time.Second)
		// Fill with 256 KiB values until Redis refuses a write.
		value := strings.Repeat("x", 256<<10)
		for filled = 0; filled < 1000; filled++ {
			if err := rdb.Set(ctx, fmt.Sprintf("faults:filler:%d", filled), value, 0).Err(); err != nil {
				if !strings.HasPrefix(err.Error(), "OOM") {
					fillErr = err
				}
				break
			}
		}
		time.Sleep(10 * time.Second)
		for i := range filled {
			rdb.Del(ctx, fmt.Sprintf("faults:filler:%d", i))
		}
		freed <- time.Now()
	}()
	l := runLoad(api.URL, 50, 22*time.Second)
	at := <-freed
	if fillErr != nil || filled == 1000 {
		t.Fatalf("filling Redis: %d values, %v", filled, fillErr)
	}
	row := measure(t, "redis at maxmemory 32mb (noeviction) for 10s, 50 posts/s", started, rdb, l, 60*time.Second, at)
	expect(t, &row.failed, row.unavailable > 0, "no post was refused while Redis was full")
	expect(t, &row.failed, row.otherFailure == 0, "%d answers neither 202 nor 503: %v", row.otherFailure, row.otherKinds)
	expect(t, &row.failed, row.backAfter >= 0, "no post was acknowledged after memory was freed")
	record(t, row)
}
