//go:build faults

// Package faults is formq's fault suite: real cmd/api and cmd/worker
// processes on real redis-server (also Sentinel) and versitygw on
// loopback, under load, with parts killed on purpose. Each scenario
// tracks every acknowledged submission against the events stream and
// prints one row: acknowledged, lost, duplicated, 503s, recovery. Run it with
// `make faults` (go test -tags faults ./faults/); it is not part of
// `make test`.
package faults

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/internal/wire"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/redis/go-redis/v9"
)

// row is one scenario's outcome.
type row struct {
	scenario                  string
	posted, acked, lost, dup  int
	unavailable, otherFailure int
	refused                   int           // of otherFailure: connections refused (no process listening)
	drain                     time.Duration // from the end of the load to the last event
	p99Done                   time.Duration // p99 over acknowledged submissions of event time minus acknowledgement
	recovery, recoveryMax     time.Duration // p99 and max over submissions caught by a fault, event time minus the fault's end
	caught                    int           // submissions acknowledged before a fault ended and completed after it
	noRetryAfter              int           // 503s without a Retry-After header
	backAfter                 time.Duration // from the last fault's end to the first 202 after it; -1: none
	otherKinds                map[string]int
	slowest202, slowest503    time.Duration // the longest a request waited for each answer
	took                      time.Duration
	failed                    []string // the scenario's expectations that did not hold; empty: the row passes
}

// verdict is a row's last column: ok, or FAIL and what did not hold.
func verdict(failed []string) string {
	if len(failed) == 0 {
		return "ok"
	}
	return "FAIL: " + strings.Join(failed, "; ")
}

// expect records on the row and on t an expectation of the scenario that
// did not hold: the row shows FAIL and `make faults` exits non-zero.
func expect(t *testing.T, failed *[]string, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		msg := fmt.Sprintf(format, args...)
		*failed = append(*failed, msg)
		t.Error(msg)
	}
}

var (
	rowsMu sync.Mutex
	rows   []row
)

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Println()
	var failing []string
	fmt.Println("| scenario | posted | acknowledged | lost | duplicated | 503 | other failures | slowest 202 / 503 | first 202 after the fault | drain after load | ack→done p99 | recovery p99 / max (caught) | took | result |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		rec := "-"
		if r.caught > 0 {
			rec = fmt.Sprintf("%.1fs / %.1fs (%d)", r.recovery.Seconds(), r.recoveryMax.Seconds(), r.caught)
		}
		other := fmt.Sprint(r.otherFailure)
		if r.refused > 0 {
			other += fmt.Sprintf(" (%d refused)", r.refused)
		}
		back := "never"
		if r.backAfter == notMeasured {
			back = "-"
		}
		if r.backAfter >= 0 {
			back = fmt.Sprintf("%.1fs", r.backAfter.Seconds())
		}
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %s | %.1fs / %.1fs | %s | %.1fs | %.1fs | %s | %.0fs | %s |\n", r.scenario, r.posted, r.acked, r.lost, r.dup, r.unavailable, other, r.slowest202.Seconds(), r.slowest503.Seconds(), back, r.drain.Seconds(), r.p99Done.Seconds(), rec, r.took.Seconds(), verdict(r.failed))
		if len(r.failed) > 0 {
			failing = append(failing, r.scenario)
		}
	}
	fmt.Println()
	fmt.Println("drain after load: from the end of the load to the last new event. ack→done: a submission's first event (its stream entry's time) minus its 202.")
	fmt.Println("recovery: for each fault (a kill, or the moment the stopped dependency is back) and each submission acknowledged before it")
	fmt.Println("and completed after it, the completion time minus that fault's time (the latest such fault); caught: how many submissions that is;")
	fmt.Println("the max is the time to drain what the fault held up, from the kill or from the dependency's return.")
	fmt.Println("other failures: answers neither 202 nor 503, and transport errors; refused: connections refused while no API process listened.")
	fmt.Println("first 202 after the fault: from the fault's end (a kill, the dependency back, the proxy healed) to the first acknowledgement after it.")
	if len(cleanups) > 0 {
		fmt.Println()
		fmt.Println("| scenario | sent before the cut | answer | multipart uploads after the cut | objects after the cut | of them files (not partial) | multipart uploads left after the janitor | objects left | janitor took | took | result |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
		for _, c := range cleanups {
			fmt.Printf("| %s | %d MiB | %s | %d | %d | %d | %d | %d | %.1fs | %.0fs | %s |\n", c.scenario, c.sentMiB, cmp.Or(c.answer, "-"), c.multipartBefore, c.objectsBefore, c.filesBefore, c.multipartLeft, c.objectsLeft, c.janitor.Seconds(), c.took.Seconds(), verdict(c.failed))
			if len(c.failed) > 0 {
				failing = append(failing, c.scenario)
			}
		}
	}
	if len(failing) > 0 {
		fmt.Println()
		fmt.Printf("FAILED: %d scenario(s) did not hold their expectations:\n", len(failing))
		for _, f := range failing {
			fmt.Println("  - " + f)
		}
		code = cmp.Or(code, 1)
	}
	os.Exit(code)
}

// cleanup is the outcome of a crash mid-upload and the janitor after it.
type cleanup struct {
	scenario                       string
	sentMiB                        int
	answer                         string // what the client got, when it was not simply cut off
	multipartBefore, objectsBefore int
	filesBefore                    int // objects at a file's own key (not uploads/_partial/): must be 0
	multipartLeft, objectsLeft     int
	janitor, took                  time.Duration
	failed                         []string
}

var cleanups []cleanup

// start runs cmd/api or cmd/worker as its own process.
func start(t *testing.T, bin, name string, env map[string]string) *teststack.Process {
	t.Helper()
	return teststack.StartProcess(t, bin, name, env)
}

// load posts rate submissions a second to apiURL for d and records
// every acknowledged id.
type load struct {
	mu           sync.Mutex
	posted       int
	acked        map[string]time.Time
	links        map[string]string // acknowledged id: its statusUrl
	unavailable  int
	noRetryAfter int // of unavailable
	slowest503   time.Duration
	slowest202   time.Duration
	other        int
	refused      int            // of other
	otherKinds   map[string]int // of other: status or error, counted
}

// notMeasured is a row's backAfter when the scenario has no such time.
const notMeasured = -2

// clientTimeout is how long the load's client waits for an answer.
const clientTimeout = 30 * time.Second

func runLoad(apiURL string, rate int, d time.Duration) *load {
	return runLoadTo(func() string { return apiURL }, rate, d)
}

// runLoadTo is runLoad to an API whose address may change (a restarted
// process listens on a new port).
func runLoadTo(apiURL func() string, rate int, d time.Duration) *load {
	l := &load{acked: map[string]time.Time{}, links: map[string]string{}, otherKinds: map[string]int{}}
	client := &http.Client{Timeout: clientTimeout}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, apiURL()+"/actions/hook", strings.NewReader(url.Values{"name": {fmt.Sprintf("user %d", i)}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			sent := time.Now()
			resp, err := client.Do(req)
			took := time.Since(sent)
			l.mu.Lock()
			defer l.mu.Unlock()
			l.posted++
			if err != nil {
				l.other++
				if errors.Is(err, syscall.ECONNREFUSED) {
					l.refused++
				}
				l.otherKinds[errorKind(err)]++
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var out struct {
				Submission struct{ ID, StatusURL string } `json:"submission"`
			}
			switch {
			case resp.StatusCode == http.StatusAccepted && json.Unmarshal(b, &out) == nil && out.Submission.ID != "":
				l.acked[out.Submission.ID] = time.Now()
				l.links[out.Submission.ID] = out.Submission.StatusURL
				l.slowest202 = max(l.slowest202, took)
			case resp.StatusCode == http.StatusServiceUnavailable:
				l.unavailable++
				l.slowest503 = max(l.slowest503, took)
				if resp.Header.Get("Retry-After") == "" {
					l.noRetryAfter++
				}
			default:
				l.other++
				l.otherKinds[fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 80)]))]++
			}
		}()
	}
	wg.Wait()
	return l
}

// errorKind names a transport error without what differs between
// requests (ports, URLs).
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer within the client's timeout"
	}
	return "transport error"
}

// events counts the events per submission in the events stream, and
// gives the time of each submission's first event (its entry's id, which
// Redis stamps in milliseconds).
func events(ctx context.Context, rdb redis.UniversalClient) (map[string]int, map[string]time.Time, error) {
	msgs, err := rdb.XRange(ctx, submission.EventsStream, "-", "+").Result()
	if err != nil {
		return nil, nil, err
	}
	seen, first := map[string]int{}, map[string]time.Time{}
	for _, m := range msgs {
		var ev submission.Event
		if s, ok := m.Values["event"].(string); ok && json.Unmarshal([]byte(s), &ev) == nil {
			seen[ev.Submission]++
			if _, ok := first[ev.Submission]; !ok {
				var ms int64
				if _, err := fmt.Sscanf(m.ID, "%d-", &ms); err == nil {
					first[ev.Submission] = time.UnixMilli(ms)
				}
			}
		}
	}
	return seen, first, nil
}

// p99 of ds (sorted in place); 0 for none.
func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[(len(ds)*99+99)/100-1]
}

// settle waits up to limit for every acknowledged submission's event and
// records the scenario's row. faults are the times a fault ended (a kill,
// a dependency back), for the recovery column.
func settle(t *testing.T, name string, started time.Time, rdb redis.UniversalClient, l *load, limit time.Duration, faults ...time.Time) {
	t.Helper()
	record(t, measure(t, name, started, rdb, l, limit, faults...))
}

// record adds a scenario's row to the table.
func record(t *testing.T, r row) {
	t.Helper()
	rowsMu.Lock()
	rows = append(rows, r)
	rowsMu.Unlock()
	t.Logf("%+v", r)
}

// injectLoss, set by FAULTS_INJECT_LOSS=1, deletes one acknowledged
// submission's events from the stream before the suite counts them: a
// deliberate loss, to see the fail-on-loss path fail.
var injectLoss = os.Getenv("FAULTS_INJECT_LOSS") == "1"

// measure is settle without recording the row, for scenarios that add
// expectations of their own before they record it.
func measure(t *testing.T, name string, started time.Time, rdb redis.UniversalClient, l *load, limit time.Duration, faults ...time.Time) row {
	t.Helper()
	ctx := context.Background()
	loadEnd := time.Now()
	var seen map[string]int
	var first map[string]time.Time
	var last time.Time
	deadline := time.Now().Add(limit)
	for {
		s, f, err := events(ctx, rdb)
		if err == nil {
			if len(seen) != len(s) {
				last = time.Now()
			}
			seen, first = s, f
			missing := 0
			for id := range l.acked {
				if seen[id] == 0 {
					missing++
				}
			}
			if missing == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if injectLoss {
		if err := dropOneAcknowledged(ctx, rdb, l); err != nil {
			t.Fatalf("FAULTS_INJECT_LOSS: %v", err)
		}
		if s, f, err := events(ctx, rdb); err == nil {
			seen, first = s, f
		}
	}
	r := row{scenario: name, posted: l.posted, acked: len(l.acked), unavailable: l.unavailable, otherFailure: l.other, refused: l.refused, otherKinds: l.otherKinds,
		noRetryAfter: l.noRetryAfter, backAfter: -1, slowest202: l.slowest202, slowest503: l.slowest503, took: time.Since(started)}
	var lastFault time.Time
	for _, f := range faults {
		if f.After(lastFault) {
			lastFault = f
		}
	}
	for _, at := range l.acked {
		if back := at.Sub(lastFault); at.After(lastFault) && (r.backAfter < 0 || back < r.backAfter) {
			r.backAfter = back
		}
	}
	if last.After(loadEnd) {
		r.drain = last.Sub(loadEnd)
	}
	var lost []string
	for id := range l.acked {
		switch n := seen[id]; {
		case n == 0:
			r.lost++
			lost = append(lost, id)
		case n > 1:
			r.dup++
		}
	}
	var done, rec []time.Duration
	for id, acked := range l.acked {
		c, ok := first[id]
		if !ok {
			continue
		}
		done = append(done, c.Sub(acked))
		var k time.Time
		for _, f := range faults {
			if f.After(acked) && f.Before(c) && f.After(k) {
				k = f
			}
		}
		if !k.IsZero() {
			rec = append(rec, c.Sub(k))
		}
	}
	r.p99Done, r.caught = p99(done), len(rec)
	if len(rec) > 0 {
		r.recovery = p99(rec)
		r.recoveryMax = rec[len(rec)-1]
	}
	sort.Strings(lost)
	expect(t, &r.failed, r.lost == 0, "%d acknowledged submissions lost %v", r.lost, lost)
	expect(t, &r.failed, r.dup == 0, "%d acknowledged submissions duplicated", r.dup)
	expect(t, &r.failed, r.noRetryAfter == 0, "%d of %d 503s without Retry-After", r.noRetryAfter, r.unavailable)
	return r
}

// dropOneAcknowledged deletes from the events stream every event of one
// acknowledged submission.
func dropOneAcknowledged(ctx context.Context, rdb redis.UniversalClient, l *load) error {
	var victim string
	for id := range l.acked {
		victim = max(victim, id)
	}
	if victim == "" {
		return errors.New("nothing was acknowledged")
	}
	msgs, err := rdb.XRange(ctx, submission.EventsStream, "-", "+").Result()
	if err != nil {
		return err
	}
	var ids []string
	for _, m := range msgs {
		var ev submission.Event
		if s, ok := m.Values["event"].(string); ok && json.Unmarshal([]byte(s), &ev) == nil && ev.Submission == victim {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		return fmt.Errorf("no event of %s to delete", victim)
	}
	return rdb.XDel(ctx, submission.EventsStream, ids...).Err()
}

// stack is what every scenario starts from.
type stack struct {
	apiBin, workerBin string
	env               map[string]string
}

// hookActions serves recv on loopback as the webhook receiver and writes
// an actions file whose action hook (one required field, name) posts to
// it with the webhook settings given (such as "backoff: 200ms"); more is
// YAML that follows the hook's steps: more of the hook, more actions.
func hookActions(t *testing.T, recv http.Handler, webhook, more string) string {
	t.Helper()
	srv := &http.Server{Handler: recv}
	ln, err := wire.Listen("127.0.0.1:0", "receiver")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	file := filepath.Join(t.TempDir(), "actions.yaml")
	err = os.WriteFile(file, []byte(`actions:
  hook:
    fields:
      name: {type: text, required: true}
    steps:
      - webhook: {url: "http://`+ln.Addr().String()+`/hook", secret_env: FAULTS_HOOK_SECRET, `+webhook+`}
`+more), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// storeOf is a Store of s3's bucket, to look at what the bucket holds.
func storeOf(t *testing.T, s3 testenv.S3) *uploads.Store {
	t.Helper()
	store, err := uploads.NewStore(context.Background(), uploads.Config{Endpoint: s3.Endpoint, Region: s3.Region, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func newStack(t *testing.T, redisURL string, s3 testenv.S3, extra map[string]string) *stack {
	t.Helper()
	actionsFile := hookActions(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }), "backoff: 200ms", `    revalidate: {paths: [/hooks]}
  upload:
    uploads:
      file: {max_size: 256MB}
    max_body: 300MB
`)
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_ADDR": "127.0.0.1:0", "FORMQ_WORKER_ADDR": "127.0.0.1:0",
		"FORMQ_REDIS_URL": redisURL, "FORMQ_S3_CREATE_BUCKET": "true", "FORMQ_ACTIONS": actionsFile,
		"FORMQ_WEBHOOK_ALLOW_PRIVATE": "true", "FAULTS_HOOK_SECRET": "whsec_ZmF1bHRzLXN1aXRlLXNlY3JldC0xMjM0NTY3OA==",
		"FORMQ_WORKER_CONCURRENCY": "8", "FORMQ_SHUTDOWN_TIMEOUT": "5s",
		"FORMQ_SECRET": "faults-suite-secret-0123456789abcdef",
	}
	for k, v := range s3.Env() {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return &stack{apiBin: binary(t, "./cmd/api"), workerBin: binary(t, "./cmd/worker"), env: env}
}

var (
	binMu sync.Mutex
	bins  = map[string]string{}
)

// binary builds a command once per run of the suite, with go build's
// flags, if any.
func binary(t *testing.T, pkg string, flags ...string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	key := strings.Join(append([]string{pkg}, flags...), " ")
	if b, ok := bins[key]; ok {
		return b
	}
	dir, err := os.MkdirTemp("", "formq-faults-")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := testenv.RepoRoot()
	b := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", b, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s %s: %v\n%s", strings.Join(flags, " "), pkg, err, out)
	}
	bins[key] = b
	return b
}

// TestWorkerSIGKILLUnderLoad: two workers, 50 posts/s for 40 s, one
// worker SIGKILLed and started again every 8 s.
func TestWorkerSIGKILLUnderLoad(t *testing.T) {
	started := time.Now()
	r := testenv.StartRedis(t)
	st := newStack(t, r.URL(), testenv.StartS3(t), nil)
	api := start(t, st.apiBin, "api", st.env)
	_ = start(t, st.workerBin, "worker-steady", st.env)
	victim := start(t, st.workerBin, "worker-victim", st.env)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var kills []time.Time // written by the killer only, read after wg.Wait
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(8 * time.Second):
			}
			victim.Kill()
			kills = append(kills, time.Now())
			victim = start(t, st.workerBin, fmt.Sprintf("worker-victim-%d", n), st.env)
		}
	})
	l := runLoad(api.URL, 50, 40*time.Second)
	close(stop)
	wg.Wait()
	settle(t, "worker SIGKILL every 8s, 50 posts/s", started, r.Client(t), l, 90*time.Second, kills...)
}

// TestSentinelFailoverUnderLoad SIGKILLs the primary under load, with
// FORMQ_REDIS_MIN_REPLICAS=1 and without.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	for _, durable := range []bool{true, false} {
		name := "sentinel failover, primary SIGKILL, WAIT off"
		extra := map[string]string{}
		if durable {
			name = "sentinel failover, primary SIGKILL, WAIT on (1 replica)"
			extra["FORMQ_REDIS_MIN_REPLICAS"] = "1"
			extra["FORMQ_REDIS_REPLICA_TIMEOUT"] = "1s"
		}
		t.Run(name, func(t *testing.T) {
			started := time.Now()
			sen := testenv.StartSentinel(t)
			st := newStack(t, sen.URL(), testenv.StartS3(t), extra)
			api := start(t, st.apiBin, "api", st.env)
			_ = start(t, st.workerBin, "worker", st.env)
			killed := make(chan time.Time, 1)
			go func() {
				time.Sleep(8 * time.Second)
				sen.Primary.Kill(t)
				killed <- time.Now()
			}()
			l := runLoad(api.URL, 50, 20*time.Second)
			kill := <-killed
			fo, _ := wire.SentinelOptions(sen.URL())
			rdb := redis.NewFailoverClient(fo)
			defer rdb.Close()
			settle(t, name, started, rdb, l, 60*time.Second, kill)
		})
	}
}

// TestS3StoppedUnderLoad: versitygw SIGKILLed for 10 s in the middle of
// 30 s of 50 posts/s, then started again on its address and data.
func TestS3StoppedUnderLoad(t *testing.T) {
	started := time.Now()
	r := testenv.StartRedis(t)
	s3, srv := testenv.StartPrivateS3(t)
	st := newStack(t, r.URL(), s3, nil)
	api := start(t, st.apiBin, "api", st.env)
	_ = start(t, st.workerBin, "worker", st.env)
	back := make(chan time.Time, 1)
	go func() {
		time.Sleep(10 * time.Second)
		srv.Kill(t)
		time.Sleep(10 * time.Second)
		srv.Start(t)
		back <- time.Now()
	}()
	l := runLoad(api.URL, 50, 30*time.Second)
	settle(t, "S3 stopped for 10s, 50 posts/s", started, r.Client(t), l, 60*time.Second, <-back)
}

// TestRedisRestartUnderLoad stops the queue's redis-server (appendonly,
// appendfsync everysec) in the middle of 30 s of 50 posts/s and starts
// it again on its address and data 3 s later: once with SIGTERM, once
// with SIGKILL.
func TestRedisRestartUnderLoad(t *testing.T) {
	for _, sig := range []string{"SIGTERM", "SIGKILL"} {
		name := "redis " + sig + ", restarted after 3s, 50 posts/s"
		t.Run(sig, func(t *testing.T) {
			started := time.Now()
			r, srv := testenv.StartPrivateRedis(t)
			st := newStack(t, r.URL(), testenv.StartS3(t), nil)
			api := start(t, st.apiBin, "api", st.env)
			_ = start(t, st.workerBin, "worker", st.env)
			back := make(chan time.Time, 1)
			go func() {
				time.Sleep(10 * time.Second)
				if sig == "SIGTERM" {
					srv.Terminate(t)
				} else {
					srv.Kill(t)
				}
				time.Sleep(3 * time.Second)
				srv.Start(t)
				back <- time.Now()
			}()
			l := runLoad(api.URL, 50, 30*time.Second)
			settle(t, name, started, r.Client(t), l, 60*time.Second, <-back)
		})
	}
}

// TestGracefulShutdownUnderLoad sends SIGTERM to the API, or to one of
// two workers, in the middle of 30 s of 50 posts/s and starts it again:
// requests in flight are answered (a transport error that is not a
// refused connection counts as other), nothing acknowledged is lost.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	for _, which := range []string{"api", "worker"} {
		name := which + " SIGTERM, started again, 50 posts/s"
		t.Run(which, func(t *testing.T) {
			started := time.Now()
			r := testenv.StartRedis(t)
			st := newStack(t, r.URL(), testenv.StartS3(t), nil)
			api := start(t, st.apiBin, "api", st.env)
			_ = start(t, st.workerBin, "worker-steady", st.env)
			worker := start(t, st.workerBin, "worker", st.env)
			var target sync.Mutex
			apiURL := api.URL
			back := make(chan time.Time, 1)
			go func() {
				time.Sleep(10 * time.Second)
				if which == "api" {
					api.Terminate()
					next := start(t, st.apiBin, "api-2", st.env)
					target.Lock()
					apiURL = next.URL
					target.Unlock()
				} else {
					worker.Terminate()
					_ = start(t, st.workerBin, "worker-2", st.env)
				}
				back <- time.Now()
			}()
			l := runLoadTo(func() string {
				target.Lock()
				defer target.Unlock()
				return apiURL
			}, 50, 30*time.Second)
			settle(t, name, started, r.Client(t), l, 60*time.Second, <-back)
		})
	}
}

// TestAPISIGKILLMidUpload SIGKILLs the API while a 96 MiB multipart
// upload is on its way (after 40 MiB, so parts are in S3), then starts a
// worker whose janitor sweeps every second with a 3 s minimum age, and
// counts what the crash left in the bucket and what the janitor left.
func TestAPISIGKILLMidUpload(t *testing.T) {
	started := time.Now()
	r := testenv.StartRedis(t)
	s3 := testenv.StartS3(t)
	st := newStack(t, r.URL(), s3, map[string]string{"FORMQ_JANITOR_INTERVAL": "1s", "FORMQ_JANITOR_MIN_AGE": "3s"})
	api := start(t, st.apiBin, "api", st.env)
	ctx := context.Background()
	store := storeOf(t, s3)
	count := func() (parts, objects int) {
		ups, err := store.MultipartUploads(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		keys, err := store.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(ups), len(keys)
	}

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	sent := make(chan int, 1)
	go func() {
		fw, _ := mw.CreateFormFile("file", "big.bin")
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = byte(i * 7)
		}
		for n := 1; n <= 96; n++ {
			if _, err := fw.Write(chunk); err != nil {
				sent <- n - 1
				return
			}
			if n == 40 {
				sent <- n
			}
			time.Sleep(20 * time.Millisecond)
		}
		mw.Close()
		pw.Close()
	}()
	posted := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, api.URL+"/actions/upload", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("the upload was answered %d before the kill", resp.StatusCode)
		}
		pr.CloseWithError(err)
		posted <- err
	}()
	mib := <-sent
	// The API reads behind the client by its buffers: give the parts
	// already read time to reach S3, then crash.
	time.Sleep(time.Second)
	api.Kill()
	if err := <-posted; err != nil && strings.Contains(err.Error(), "answered") {
		t.Fatal(err)
	}
	c := cleanup{scenario: "API SIGKILL mid-upload (96 MiB, killed after 40 MiB), janitor every 1s, min age 3s", sentMiB: mib}
	c.multipartBefore, c.objectsBefore = count()
	expect(t, &c.failed, c.multipartBefore+c.objectsBefore > 0, "the kill left nothing in the bucket: the scenario did not catch the upload in S3")
	awaitJanitor(t, st, &c, started, count)
}

// awaitJanitor starts a worker, whose janitor sweeps the bucket, and
// waits up to a minute until count finds no multipart upload and no
// object left; it records the row with how long the sweep took, failed
// when anything is left.
func awaitJanitor(t *testing.T, st *stack, c *cleanup, started time.Time, count func() (parts, objects int)) {
	t.Helper()
	sweep := time.Now()
	_ = start(t, st.workerBin, "worker", st.env)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c.multipartLeft, c.objectsLeft = count()
		if c.multipartLeft+c.objectsLeft == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.janitor, c.took = time.Since(sweep), time.Since(started)
	expect(t, &c.failed, c.multipartLeft+c.objectsLeft == 0, "the janitor left %d multipart uploads and %d objects", c.multipartLeft, c.objectsLeft)
	rowsMu.Lock()
	cleanups = append(cleanups, *c)
	rowsMu.Unlock()
	t.Logf("%+v", *c)
}
