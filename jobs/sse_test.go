package jobs_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions/status"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
)

// startEvents serves GET /events from one hub on the test's Redis. stop
// ends the hub, as a shutting-down API process does; the test's end does
// too.
func startEvents(tb testing.TB, heartbeat time.Duration) (srv *httptest.Server, rdb *redis.Client, stop func()) {
	tb.Helper()
	rdb = testenv.StartRedis(tb).Client(tb)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, stop := context.WithCancel(context.Background())
	hub := jobs.NewHub(rdb, log)
	go hub.Run(ctx)
	e := echo.New()
	h := status.New(status.Config{Heartbeat: heartbeat}, status.Deps{Events: hub, Done: ctx.Done(), Log: log})
	e.GET("/events", h.Events)
	srv = httptest.NewServer(e)
	tb.Cleanup(srv.Close)
	tb.Cleanup(stop) // runs first: open streams end, then the server closes
	return srv, rdb, stop
}

// TestEventsHeartbeatAndShutdown: an idle /events stream gets comment
// lines, and ends when the process shuts down (the hub stops).
func TestEventsHeartbeatAndShutdown(t *testing.T) {
	srv, _, stop := startEvents(t, 50*time.Millisecond)

	resp, err := http.Get(srv.URL + "/events?tag=users")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	beats := 0
	for beats < 3 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), ": heartbeat") {
			beats++
		}
	}
	if beats != 3 {
		t.Fatalf("got %d heartbeats before the stream ended", beats)
	}
	stop()
	ended := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end when the hub stopped")
	}
}

// BenchmarkIdleSSESubscribers opens 1000 /events streams over HTTP to one
// API handler and reports the memory and goroutines each costs. Client
// and server run in this process, so the numbers include both ends.
func BenchmarkIdleSSESubscribers(b *testing.B) {
	srv, rdb, _ := startEvents(b, 0)
	const n = 1000
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		bodies := make([]io.Closer, 0, n)
		for range n {
			resp, err := client.Get(srv.URL + "/events?tag=users")
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 16)
			if _, err := resp.Body.Read(buf); err != nil { // the retry: preamble
				b.Fatal(err)
			}
			bodies = append(bodies, resp.Body)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		used := float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)
		b.ReportMetric(used/n, "bytes/subscriber")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/subscriber")
		b.ReportMetric(float64(rdb.PoolStats().TotalConns), "redis-conns")
		for _, c := range bodies {
			c.Close()
		}
	}
}
