package jobs_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
)

// TestEventsHeartbeatAndShutdown: an idle /events stream gets comment
// lines, and ends when the process shuts down (the hub stops).
func TestEventsHeartbeatAndShutdown(t *testing.T) {
	r := testenv.StartRedis(t)
	opt, _ := redis.ParseURL(r.URL())
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	hub := jobs.NewHub(rdb, log)
	go hub.Run(ctx)

	e := echo.New()
	h := &actions.Handler{Log: log, Fleet: actions.Fleet{Events: hub, Heartbeat: 50 * time.Millisecond, Done: ctx.Done()}}
	e.GET("/events", h.Events)
	srv := httptest.NewServer(e)
	defer srv.Close()

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
