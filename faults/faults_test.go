//go:build faults

// Package faults is formq's fault suite: real cmd/api and cmd/worker
// processes on real redis-server (also Sentinel) and versitygw on
// loopback, under load, with parts killed on purpose. Each scenario
// tracks every acknowledged submission against the events stream and
// prints one row: acknowledged, lost, duplicated, 503s. Run it with
// `make faults` (go test -tags faults ./faults/); it is not part of
// `make test`.
package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/redis/go-redis/v9"
)

// row is one scenario's outcome.
type row struct {
	scenario                  string
	posted, acked, lost, dup  int
	unavailable, otherFailure int
	drain                     time.Duration // from the end of the load to the last event
	took                      time.Duration
}

var (
	rowsMu sync.Mutex
	rows   []row
)

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Println()
	fmt.Println("| scenario | posted | acknowledged | lost | duplicated | 503 | other failures | drain after load | took |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %d | %.1fs | %.0fs |\n", r.scenario, r.posted, r.acked, r.lost, r.dup, r.unavailable, r.otherFailure, r.drain.Seconds(), r.took.Seconds())
	}
	os.Exit(code)
}

// proc is cmd/api or cmd/worker running as its own process.
type proc struct {
	cmd *exec.Cmd
	url string
}

func start(t *testing.T, bin, name string, env map[string]string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	teststack.WaitFor(t, 30*time.Second, name+" listening", func() bool {
		f, err := os.Open(logPath)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				p.url = line.URL
				return true
			}
		}
		return false
	})
	teststack.WaitOK(t, p.url+"/healthz")
	return p
}

// kill ends p with SIGKILL and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	for p.cmd.ProcessState == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// load posts rate submissions a second to apiURL for d and records
// every acknowledged id.
type load struct {
	mu          sync.Mutex
	posted      int
	acked       map[string]time.Time
	unavailable int
	other       int
}

func runLoad(apiURL string, rate int, d time.Duration) *load {
	l := &load{acked: map[string]time.Time{}}
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, apiURL+"/actions/hook", strings.NewReader(url.Values{"name": {fmt.Sprintf("user %d", i)}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			resp, err := client.Do(req)
			l.mu.Lock()
			defer l.mu.Unlock()
			l.posted++
			if err != nil {
				l.other++
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var out struct {
				Submission struct{ ID string } `json:"submission"`
			}
			switch {
			case resp.StatusCode == http.StatusAccepted && json.Unmarshal(b, &out) == nil && out.Submission.ID != "":
				l.acked[out.Submission.ID] = time.Now()
			case resp.StatusCode == http.StatusServiceUnavailable:
				l.unavailable++
			default:
				l.other++
			}
		}()
	}
	wg.Wait()
	return l
}

// events counts the events per submission in the events stream.
func events(ctx context.Context, rdb redis.UniversalClient) (map[string]int, error) {
	msgs, err := rdb.XRange(ctx, submission.EventsStream, "-", "+").Result()
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	for _, m := range msgs {
		var ev submission.Event
		if s, ok := m.Values["event"].(string); ok && json.Unmarshal([]byte(s), &ev) == nil {
			seen[ev.Submission]++
		}
	}
	return seen, nil
}

// settle waits up to limit for every acknowledged submission's event and
// records the scenario's row.
func settle(t *testing.T, name string, started time.Time, rdb redis.UniversalClient, l *load, limit time.Duration) {
	t.Helper()
	ctx := context.Background()
	loadEnd := time.Now()
	var seen map[string]int
	var last time.Time
	deadline := time.Now().Add(limit)
	for {
		s, err := events(ctx, rdb)
		if err == nil {
			if len(seen) != len(s) {
				last = time.Now()
			}
			seen = s
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
	r := row{scenario: name, posted: l.posted, acked: len(l.acked), unavailable: l.unavailable, otherFailure: l.other, took: time.Since(started)}
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
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Logf("%s: lost %v", name, lost)
	}
	rowsMu.Lock()
	rows = append(rows, r)
	rowsMu.Unlock()
	t.Logf("%+v", r)
}

// stack is what every scenario starts from.
type stack struct {
	apiBin, workerBin string
	env               map[string]string
}

func newStack(t *testing.T, redisURL string, s3 testenv.S3, extra map[string]string) *stack {
	t.Helper()
	recv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })}
	ln, err := wire.Listen("127.0.0.1:0", "receiver")
	if err != nil {
		t.Fatal(err)
	}
	go recv.Serve(ln)
	t.Cleanup(func() { recv.Close() })
	actionsFile := filepath.Join(t.TempDir(), "actions.yaml")
	os.WriteFile(actionsFile, []byte(`actions:
  hook:
    fields:
      name: {type: text, required: true}
    steps:
      - webhook: {url: "http://`+ln.Addr().String()+`/hook", secret_env: FAULTS_HOOK_SECRET, backoff: 200ms}
    revalidate: {paths: [/hooks]}
`), 0o644)
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

// binary builds a command once per run of the suite.
func binary(t *testing.T, pkg string) string {
	binMu.Lock()
	defer binMu.Unlock()
	if b, ok := bins[pkg]; ok {
		return b
	}
	dir, err := os.MkdirTemp("", "formq-faults-")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := testenv.RepoRoot()
	b := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", b, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	bins[pkg] = b
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
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(8 * time.Second):
			}
			victim.kill()
			victim = start(t, st.workerBin, fmt.Sprintf("worker-victim-%d", n), st.env)
		}
	})
	l := runLoad(api.url, 50, 40*time.Second)
	close(stop)
	wg.Wait()
	settle(t, "worker SIGKILL every 8s, 50 posts/s", started, r.Client(t), l, 90*time.Second)
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
			go func() {
				time.Sleep(8 * time.Second)
				sen.Primary.Kill(t)
			}()
			l := runLoad(api.url, 50, 20*time.Second)
			fo, _ := wire.SentinelOptions(sen.URL())
			rdb := redis.NewFailoverClient(fo)
			defer rdb.Close()
			settle(t, name, started, rdb, l, 60*time.Second)
		})
	}
}
