package bench

// The answer rows: an action with wait: whose webhook app answers in
// 5 ms, through bin/api and bin/worker, answered once the app's data is
// in (200 completed); idle (one post at a time) and at 200 posts/s. Beside
// it, raw asynq's Enqueue → handler with the waiting queue's 5 ms poll and
// with the 100 ms poll of the other queues; and what the waiting queue's
// poll costs an idle worker in Redis commands per second.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

const (
	answerIdle    = 100 // posts per idle window, one at a time
	answerRate    = 200 // posts per second of the loaded window
	answerLoadFor = 5 * time.Second
	appLatency    = 5 * time.Millisecond
	waitPoll      = 5 * time.Millisecond // the worker's waiting-queue poll
	answerSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

func BenchmarkAnswers(b *testing.B) {
	for range b.N {
		runAnswers(b)
	}
}

func runAnswers(b *testing.B) {
	ctx := testenv.Context(b)
	r := testenv.StartRedis(b)
	s := testenv.StartS3(b)
	ensureBucket(b, s)
	rdb := r.Client(b)
	bin := testenv.Build(b, "", "./cmd/worker")

	app := benchApp(b)
	dir := b.TempDir()
	waiting := filepath.Join(dir, "answers.yaml")
	plain := filepath.Join(dir, "plain.yaml")
	writeFile(b, waiting, fmt.Sprintf(`actions:
  bench-answer:
    fields:
      name: {type: text, required: true}
    steps:
      - webhook: {name: save, url: "%s/save", secret_env: BENCH_HOOK}
    wait: 2s
    message: "Saved {steps.save.id}"
    honeypot: false
`, app))
	writeFile(b, plain, "actions:\n  bench-plain:\n    fields:\n      name: {type: text}\n    honeypot: false\n")
	env := []string{"FORMQ_ACTIONS=" + waiting, "FORMQ_WEBHOOK_ALLOW_PRIVATE=true", "BENCH_HOOK=" + answerSecret}
	api := startAPI(b, r, s, env...)
	w := startWorker(b, bin, r, s, env...)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	post := func() (float64, error) { return postAnswer(ctx, client, api.url) }

	var i50, i99, l50, l99 []float64
	var late atomic.Int64
	for range repeats {
		lat, n := answerWindow(b, answerIdle, 100*time.Millisecond, post)
		i50, i99 = append(i50, pct(lat, 50)), append(i99, pct(lat, 99))
		late.Add(n)
		lat, n = answerWindow(b, int(answerLoadFor.Seconds())*answerRate, time.Second/answerRate, post)
		l50, l99 = append(l50, pct(lat, 50)), append(l99, pct(lat, 99))
		late.Add(n)
	}
	// Idle cost: Redis commands per second of one idle worker, with the
	// waiting queue's server and without it (no action waits).
	withFast := idleCommands(ctx, b, rdb)
	w.stop()
	w = startWorker(b, bin, r, s, "FORMQ_ACTIONS="+plain)
	withoutFast := idleCommands(ctx, b, rdb)
	w.stop()

	// Raw asynq: Enqueue → handler, polled every 5 ms and every 100 ms.
	raw := func(poll time.Duration) (p50, p99 []float64) {
		flush(ctx, b, rdb)
		srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Concurrency: defaultConcurrency(), Queues: map[string]int{submission.WaitQueue: 1}, TaskCheckInterval: poll, LogLevel: asynq.FatalLevel,
		})
		ran := newArrivals()
		mux := asynq.NewServeMux()
		mux.HandleFunc("bench:raw", func(ctx context.Context, t *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			ran.arrive(id)
			return nil
		})
		if err := srv.Start(mux); err != nil {
			b.Fatal(err)
		}
		defer srv.Shutdown()
		c := asynq.NewClientFromRedisClient(rdb)
		payload := rawPayload(b)
		enqueue := func() (string, error) {
			info, err := c.EnqueueContext(ctx, asynq.NewTask("bench:raw", payload), asynq.Queue(submission.WaitQueue))
			if err != nil {
				return "", err
			}
			return info.ID, nil
		}
		for range repeats {
			lat := timedEvents(ctx, b, ran, answerIdle, 100*time.Millisecond, enqueue)
			p50, p99 = append(p50, pct(lat, 50)), append(p99, pct(lat, 99))
		}
		return p50, p99
	}
	r50, r99 := raw(waitPoll)
	s50, s99 := raw(pickupPeriod)

	note := fmt.Sprintf("app answers in %s; %d of %d answers not completed within the wait", appLatency, late.Load(),
		repeats*(answerIdle+int(answerLoadFor.Seconds())*answerRate))
	row := func(work string, f, l []float64, goal string) {
		AddRow(Row{Group: "events", Work: work, Formq: median(f), Limit: median(l), Unit: "ms",
			LimitName: "raw asynq Enqueue → handler, 5 ms poll",
			Note:      fmt.Sprintf("median of %d (range %s; raw %s); goal %s; %s; %s", repeats, spread(f), spread(l), goal, note, loadNote())})
	}
	row("waiting answer (wait: 2s), idle, p50", i50, r50, "≤ 30 ms")
	row("waiting answer (wait: 2s), idle, p99", i99, r99, "≤ 80 ms")
	row(fmt.Sprintf("waiting answer (wait: 2s), %d/s, p50", answerRate), l50, r50, "≤ 30 ms")
	row(fmt.Sprintf("waiting answer (wait: 2s), %d/s, p99", answerRate), l99, r99, "≤ 80 ms")
	AddRow(Row{Group: "events", Work: "raw asynq Enqueue → handler, 100 ms poll (the other queues), p50", Formq: median(s50), Unit: "ms",
		Note: fmt.Sprintf("p99 %.0f ms; median of %d", median(s99), repeats)})
	AddRow(Row{Group: "events", Work: "idle worker, Redis commands/s, with an action that waits", Formq: withFast, Limit: withoutFast, Unit: "cmd/s",
		LimitName: "the same worker, no action waits",
		Note:      "the waiting queue's 5 ms poll; the ratio is the share of the cost without it"})
}

// answerWindow posts n times, every gap, and answers each post's time in ms
// and how many were not answered completed (202 after the wait ran out).
func answerWindow(b *testing.B, n int, gap time.Duration, post func() (float64, error)) ([]float64, int64) {
	b.Helper()
	lat := make([]float64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(gap)
	for i := range n {
		wg.Go(func() { lat[i], errs[i] = post() })
		<-tick.C
	}
	tick.Stop()
	wg.Wait()
	var late int64
	for _, err := range errs {
		if err == errNotCompleted {
			late++
		} else if err != nil {
			b.Fatal(err)
		}
	}
	return lat, late
}

var errNotCompleted = fmt.Errorf("answered without waiting for completion")

// postAnswer posts the waiting action and times its answer.
func postAnswer(ctx context.Context, c *http.Client, apiURL string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/actions/bench-answer", strings.NewReader("name=Ada"))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ms := float64(time.Since(start).Microseconds()) / 1000
	switch resp.StatusCode {
	case http.StatusOK:
		var a struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &a) != nil || !strings.HasPrefix(a.Message, "Saved ") {
			return ms, fmt.Errorf("answer without the app's data: %s", body)
		}
		return ms, nil
	case http.StatusAccepted:
		return ms, errNotCompleted
	default:
		return ms, fmt.Errorf("answer %d: %s", resp.StatusCode, body)
	}
}

// benchApp is the app behind the webhook: it answers an id after
// appLatency.
func benchApp(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(appLatency)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"data": {"id": %d}}`, n.Add(1))
	})}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// idleCommands is how many commands Redis ran per second over 5 s while
// nothing was posted, from INFO's total_commands_processed (this test's
// own INFO calls take 2 of them).
func idleCommands(ctx context.Context, b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	time.Sleep(time.Second) // let start-up work settle
	read := func() float64 {
		info, err := rdb.Info(ctx, "stats").Result()
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return n
			}
		}
		b.Fatal("no total_commands_processed in INFO stats")
		return 0
	}
	const window = 5 * time.Second
	before := read()
	time.Sleep(window)
	return (read() - before - 1) / window.Seconds()
}

func writeFile(b *testing.B, path, body string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
}
