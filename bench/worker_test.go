package bench

// The worker rows: bin/worker draining queued submissions without steps,
// beside raw asynq processing where each task PUTs one 1 KiB object to the
// same S3 server; and submit → event latency through bin/api and
// bin/worker, paced and with an idle worker, beside raw asynq's time from
// Enqueue to its handler.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

const (
	drainCount   = 20_000 // submissions queued before one worker drains them
	sweepCount   = 4_000  // the same, for each concurrency of the sweep
	pacedRate    = 200    // submissions per second of the paced latency row
	pacedCount   = 1_000  // submissions per paced window
	idleSamples  = 20     // submissions per idle window
	pickupPeriod = 100 * time.Millisecond
)

func BenchmarkWorker(b *testing.B) {
	for range b.N {
		runWorker(b)
	}
}

func runWorker(b *testing.B) {
	ctx := testenv.Context(b)
	r := testenv.StartRedis(b)
	s := testenv.StartS3(b)
	store := ensureBucket(b, s)
	rdb := r.Client(b)
	bin := testenv.Build(b, "", "./cmd/worker")
	cores := runtime.NumCPU()
	def := defaultConcurrency()

	var formq, raw, cpu []float64
	for range repeats {
		rate, us := drainFormq(ctx, b, bin, r, s, rdb, drainCount, "")
		formq, cpu = append(formq, rate), append(cpu, us)
		raw = append(raw, drainRaw(ctx, b, rdb, store, drainCount, def))
	}
	AddRow(Row{Group: "worker", Work: fmt.Sprintf("one worker draining %d queued, no steps", drainCount),
		Formq: median(formq), Limit: median(raw), Unit: "submissions/s", HigherIsBetter: true,
		LimitName: "raw asynq, each task PUTs 1 KiB to S3",
		Note: fmt.Sprintf("median of %d (range %s; raw %s); concurrency %d (default); worker CPU %s µs per submission (range %s); %s",
			repeats, spread(formq), spread(raw), def, num(median(cpu)), spread(cpu), loadNote())})
	b.ReportMetric(median(formq), "drain/s")

	for _, k := range []int{2, 4, 8} {
		n := k * cores
		rate, us := drainFormq(ctx, b, bin, r, s, rdb, sweepCount, fmt.Sprint(n))
		lim := drainRaw(ctx, b, rdb, store, sweepCount, n)
		AddRow(Row{Group: "worker", Work: fmt.Sprintf("  same, %d queued, FORMQ_WORKER_CONCURRENCY=%d (%d× cores)", sweepCount, n, k),
			Formq: rate, Limit: lim, Unit: "submissions/s", HigherIsBetter: true, LimitName: "raw asynq + 1 KiB PUT",
			Note: fmt.Sprintf("one run; worker CPU %s µs per submission; %s", num(us), loadNote())})
	}

	latency(ctx, b, bin, r, s, rdb)
}

// defaultConcurrency is the worker's FORMQ_WORKER_CONCURRENCY default.
func defaultConcurrency() int { return formq.DefaultConfig().WorkerConcurrency }

// drainFormq queues n submissions of bench-form through formq's
// Enqueuer into a paused queue, starts bin/worker, resumes the queue and
// answers the submissions completed per second and the worker's CPU per
// submission in µs. concurrency "" keeps the worker's default.
func drainFormq(ctx context.Context, b *testing.B, bin string, r testenv.Redis, s testenv.S3, rdb *redis.Client, n int, concurrency string) (float64, float64) {
	b.Helper()
	flush(ctx, b, rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	enq := jobs.NewEnqueuer(asynq.NewClientFromRedisClient(rdb), jobs.NewStatusStore(rdb), nil)
	// The queue exists (asynq pauses only known queues) and is paused.
	fill(ctx, b, 1, func(i int) error { return enq.Enqueue(ctx, benchSubmission(fmt.Sprintf("warm%06d", i))) })
	if err := insp.PauseQueue(submission.DefaultQueue); err != nil {
		b.Fatal(err)
	}
	fill(ctx, b, n-1, func(i int) error { return enq.Enqueue(ctx, benchSubmission(fmt.Sprintf("drain%06d", i))) })

	env := []string{}
	if concurrency != "" {
		env = append(env, "FORMQ_WORKER_CONCURRENCY="+concurrency)
	}
	w := startWorker(b, bin, r, s, env...)
	defer w.stop()
	t0 := procCPU(b, w.pid)
	start := time.Now()
	if err := insp.UnpauseQueue(submission.DefaultQueue); err != nil {
		b.Fatal(err)
	}
	// Every processed submission is in the inbox index, completed with
	// it: count its entries (one O(1) ZCARD) rather than ask asynq for the
	// queue's state every 10 ms, whose script samples MEMORY USAGE of the
	// queue's tasks and loaded Redis during formq's drain only (the raw
	// drain counts in its handler). Failures are checked every second and
	// at the end.
	checked := start
	for {
		if time.Since(checked) >= time.Second {
			drainFailures(b, insp)
			checked = time.Now()
		}
		indexed, err := rdb.ZCard(ctx, submission.IndexAll).Result()
		if err != nil {
			b.Fatal(err)
		}
		if indexed >= int64(n) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	d := time.Since(start)
	for {
		if q := drainFailures(b, insp); q.Completed >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	us := float64(procCPU(b, w.pid)-t0) / float64(n)
	return float64(n) / d.Seconds(), us
}

// drainFailures fails the benchmark when the worker failed submissions
// and answers the queue's state.
func drainFailures(b *testing.B, insp *asynq.Inspector) *asynq.QueueInfo {
	b.Helper()
	q, err := insp.GetQueueInfo(submission.DefaultQueue)
	if err != nil {
		b.Fatal(err)
	}
	if q.Retry+q.Archived > 0 {
		b.Fatalf("worker failed submissions: %+v", q)
	}
	return q
}

// drainRaw is the limit: n plain asynq tasks, each handler PUTting one
// 1 KiB object to the S3 server formq uses, drained by an asynq server
// of the given concurrency.
func drainRaw(ctx context.Context, b *testing.B, rdb *redis.Client, store *uploads.Store, n, concurrency int) float64 {
	b.Helper()
	flush(ctx, b, rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	c := asynq.NewClientFromRedisClient(rdb)
	payload := rawPayload(b)
	fill(ctx, b, 1, func(int) error { _, err := c.EnqueueContext(ctx, asynq.NewTask("bench:raw", payload)); return err })
	if err := insp.PauseQueue(submission.DefaultQueue); err != nil {
		b.Fatal(err)
	}
	fill(ctx, b, n-1, func(int) error { _, err := c.EnqueueContext(ctx, asynq.NewTask("bench:raw", payload)); return err })
	object := make([]byte, 1<<10)
	var done atomic.Int64
	all := make(chan struct{})
	srv := rawServer(rdb, concurrency)
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:raw", func(ctx context.Context, t *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		if err := store.PutJSON(ctx, "raw/"+id, object); err != nil {
			return err
		}
		if done.Add(1) == int64(n) {
			close(all)
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	start := time.Now()
	if err := insp.UnpauseQueue(submission.DefaultQueue); err != nil {
		b.Fatal(err)
	}
	select {
	case <-all:
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	}
	return float64(n) / time.Since(start).Seconds()
}

func rawServer(rdb *redis.Client, concurrency int) *asynq.Server {
	return asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: concurrency, Queues: submission.QueueWeights, TaskCheckInterval: pickupPeriod,
		LogLevel: asynq.FatalLevel,
	})
}

// latency adds the submit → event rows: POSTs to bin/api with bin/worker
// running, paced and one at a time, timed until the event appears on
// formq:revalidate; the limit is raw asynq's Enqueue → handler.
func latency(ctx context.Context, b *testing.B, bin string, r testenv.Redis, s testenv.S3, rdb *redis.Client) {
	b.Helper()
	flush(ctx, b, rdb)
	api := startAPI(b, r, s, "FORMQ_LOG_LEVEL=info")
	w := startWorker(b, bin, r, s)
	defer w.stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	events := listen(ctx, b, rdb)
	submit := func() (string, error) { return postFormID(ctx, client, api.url) }

	var p50, p99, r50, r99, i50, i99, ri50, ri99 []float64
	for range repeats {
		lat := timedEvents(ctx, b, events, pacedCount, time.Second/pacedRate, submit)
		p50, p99 = append(p50, pct(lat, 50)), append(p99, pct(lat, 99))
		lat = timedEvents(ctx, b, events, idleSamples, 250*time.Millisecond, submit)
		i50, i99 = append(i50, pct(lat, 50)), append(i99, pct(lat, 99))
	}
	srv := rawServer(rdb, defaultConcurrency())
	ran := newArrivals()
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:raw", func(ctx context.Context, t *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		ran.arrive(id)
		return nil
	})
	w.stop() // the raw server alone takes the queue's tasks
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	c := asynq.NewClientFromRedisClient(rdb)
	payload := rawPayload(b)
	enqueue := func() (string, error) {
		info, err := c.EnqueueContext(ctx, asynq.NewTask("bench:raw", payload))
		if err != nil {
			return "", err
		}
		return info.ID, nil
	}
	for range repeats {
		lat := timedEvents(ctx, b, ran, pacedCount, time.Second/pacedRate, enqueue)
		r50, r99 = append(r50, pct(lat, 50)), append(r99, pct(lat, 99))
		lat = timedEvents(ctx, b, ran, idleSamples, 250*time.Millisecond, enqueue)
		ri50, ri99 = append(ri50, pct(lat, 50)), append(ri99, pct(lat, 99))
	}
	row := func(work string, f50, f99, l50, l99 []float64) {
		AddRow(Row{Group: "events", Work: work + " p50", Formq: median(f50), Limit: median(l50), Unit: "ms",
			LimitName: "raw asynq Enqueue → handler", Note: fmt.Sprintf("median of %d (range %s; raw %s)", repeats, spread(f50), spread(l50))})
		AddRow(Row{Group: "events", Work: work + " p99", Formq: median(f99), Limit: median(l99), Unit: "ms",
			LimitName: "raw asynq Enqueue → handler", Note: fmt.Sprintf("median of %d (range %s; raw %s); goal ≤ 150 ms; %s", repeats, spread(f99), spread(l99), loadNote())})
	}
	row(fmt.Sprintf("submit → event, paced %d/s,", pacedRate), p50, p99, r50, r99)
	row(fmt.Sprintf("submit → event, idle worker (%d, 250 ms apart),", idleSamples), i50, i99, ri50, ri99)
}

// arrivals records when each id's event was seen.
type arrivals struct {
	mu   sync.Mutex
	at   map[string]time.Time
	more chan struct{}
}

func newArrivals() *arrivals {
	return &arrivals{at: map[string]time.Time{}, more: make(chan struct{}, 1)}
}

func (a *arrivals) arrive(id string) {
	now := time.Now()
	a.mu.Lock()
	a.at[id] = now
	a.mu.Unlock()
	select {
	case a.more <- struct{}{}:
	default:
	}
}

func (a *arrivals) get(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[id]
	return t, ok
}

// listen records the events published on formq:revalidate.
func listen(ctx context.Context, b *testing.B, rdb *redis.Client) *arrivals {
	b.Helper()
	ps := rdb.Subscribe(ctx, submission.EventsChannel)
	if _, err := ps.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ps.Close() })
	a := newArrivals()
	go func() {
		for m := range ps.Channel() {
			var ev struct {
				Submission string `json:"submission"`
			}
			if json.Unmarshal([]byte(m.Payload), &ev) == nil {
				a.arrive(ev.Submission)
			}
		}
	}()
	return a
}

// timedEvents starts n submissions every gap and answers each one's time
// to its event in ms.
func timedEvents(ctx context.Context, b *testing.B, a *arrivals, n int, gap time.Duration, submit func() (string, error)) []float64 {
	b.Helper()
	sent := make([]time.Time, n)
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(gap)
	for i := range n {
		sent[i] = time.Now()
		wg.Go(func() { ids[i], errs[i] = submit() })
		<-tick.C
	}
	tick.Stop()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]float64, n)
	deadline := time.Now().Add(60 * time.Second)
	for i, id := range ids {
		for {
			if at, ok := a.get(id); ok {
				lat[i] = float64(at.Sub(sent[i]).Microseconds()) / 1000
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("no event for %s within a minute", id)
			}
			select {
			case <-a.more:
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				b.Fatal(ctx.Err())
			}
		}
	}
	return lat
}

// pct is the p-th percentile of ms.
func pct(ms []float64, p int) float64 {
	s := slices.Clone(ms)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func postFormID(ctx context.Context, c *http.Client, apiURL string) (string, error) {
	raw, err := formAnswer(ctx, c, apiURL, validForm, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	var ans struct {
		Submission struct {
			ID string `json:"id"`
		} `json:"submission"`
	}
	if json.Unmarshal(raw, &ans) != nil || ans.Submission.ID == "" {
		return "", fmt.Errorf("API answered without a submission id: %s", raw)
	}
	return ans.Submission.ID, nil
}

// benchSubmission is an accepted bench-form submission as the API makes it.
func benchSubmission(id string) *submission.Submission {
	return &submission.Submission{
		ID: id, Action: "bench-form", Queue: submission.DefaultQueue,
		Values:     map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "message": "Hello from the benchmark."},
		Files:      []submission.File{},
		Request:    submission.Request{ClientIP: "127.0.0.1", UserAgent: "Go-http-client/1.1", RequestID: "bench-request-id-0123456789abcdef"},
		ReceivedAt: time.Now().UTC(), Revalidate: submission.Revalidate{Paths: []string{}, Tags: []string{}},
	}
}

// fill runs fn n times from 16 goroutines.
func fill(ctx context.Context, b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		b.Fatal(err)
	}
}

func flush(ctx context.Context, b *testing.B, rdb *redis.Client) {
	b.Helper()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
}

// workerProcess is bin/worker running as its own process.
type workerProcess struct {
	pid  int
	stop func()
}

// startWorker runs bin (bin/worker) on r and s with the bench actions;
// extra are more KEY=value settings. It answers once the worker is
// healthy.
func startWorker(b *testing.B, bin string, r testenv.Redis, s testenv.S3, extra ...string) *workerProcess {
	b.Helper()
	root, _ := testenv.RepoRoot()
	addr, err := testenv.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(),
		"FORMQ_ENV=development", "FORMQ_WORKER_ADDR="+addr, "FORMQ_REDIS_URL="+r.URL(),
		"FORMQ_ACTIONS="+filepath.Join(root, "bench", "testdata", "actions.yaml"),
	)
	for k, v := range s.Env() {
		env = append(env, k+"="+v)
	}
	env = append(env, extra...)
	logPath := filepath.Join(b.TempDir(), "worker.log")
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop := sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
	})
	b.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &workerProcess{pid: cmd.Process.Pid, stop: stop}
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			b.Fatalf("bin/worker did not become healthy: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
