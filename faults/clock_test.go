//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
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

// Go reads the wall clock through the vDSO, not libc, so faketime's
// LD_PRELOAD does not move it, and Linux time namespaces leave
// CLOCK_REALTIME alone. The clock scenarios therefore build cmd/api and
// cmd/worker with a go build -overlay of the time package whose Now adds
// FORMQ_FAULTS_CLOCK_SKEW (a Go duration) to the wall clock, as a host
// whose clock is off would: everything in the process reads it, asynq,
// go-redis and the AWS SDK included; the monotonic clock (timers,
// time.Since of a time.Now) runs as before. Only these binaries read the
// variable: the overlay exists only in this suite.

// skewEnv is the variable the skewed binaries read.
const skewEnv = "FORMQ_FAULTS_CLOCK_SKEW"

const skewedNow = `package time

import "syscall"

// skew is what this build adds to the wall clock.
var skew = func() Duration {
	s, _ := syscall.Getenv("` + skewEnv + `")
	d, _ := ParseDuration(s)
	return d
}()

// Now is the current local time, off by skew; its monotonic reading is
// the true one.
func Now() Time {
	t := realNow()
	if skew == 0 {
		return t
	}
	ext, mono := t.ext, t.wall&hasMonotonic != 0
	t = t.Add(skew)
	if mono && t.wall&hasMonotonic != 0 {
		t.ext = ext
	}
	return t
}
`

// skewedBinary builds pkg, once per run of the suite, with a clock the
// variable skewEnv moves.
func skewedBinary(t *testing.T, pkg string) string {
	t.Helper()
	return binary(t, pkg, "-overlay", clockOverlay(t))
}

var (
	overlayMu   sync.Mutex
	overlayFile string
)

// clockOverlay writes, once per run of the suite, the go build -overlay
// file that moves a build's clock: the installed Go's time.go with its
// Now renamed realNow, and skewedNow beside it.
func clockOverlay(t *testing.T) string {
	t.Helper()
	overlayMu.Lock()
	defer overlayMu.Unlock()
	if overlayFile != "" {
		return overlayFile
	}
	dir, err := os.MkdirTemp("", "formq-faults-clock-")
	if err != nil {
		t.Fatal(err)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(goroot)), "src", "time")
	orig, err := os.ReadFile(filepath.Join(src, "time.go"))
	if err != nil {
		t.Fatal(err)
	}
	const now = "\nfunc Now() Time {\n"
	if bytes.Count(orig, []byte(now)) != 1 {
		t.Fatalf("%s/time.go has no single %q: the clock overlay needs updating for this Go", src, strings.TrimSpace(now))
	}
	patched := bytes.Replace(orig, []byte(now), []byte("\nfunc realNow() Time {\n"), 1)
	overlay := map[string]map[string]string{"Replace": {
		filepath.Join(src, "time.go"):                 filepath.Join(dir, "time.go"),
		filepath.Join(src, "zz_faults_clock_skew.go"): filepath.Join(dir, "skew.go"),
	}}
	ov, _ := json.Marshal(overlay)
	for name, b := range map[string][]byte{"time.go": patched, "skew.go": []byte(skewedNow), "overlay.json": ov} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	overlayFile = filepath.Join(dir, "overlay.json")
	return overlayFile
}

// TestSkewedBinaryClock checks the overlay itself: a skewed build's
// clock, as the process reports it in its log, is off by the skew.
func TestSkewedBinaryClock(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module clock\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte(`package main

import ("fmt"; "time")

func main() {
	start := time.Now()
	time.Sleep(50 * time.Millisecond)
	fmt.Println(time.Now().Unix(), time.Since(start) >= 50*time.Millisecond && time.Since(start) < time.Second)
}
`), 0o644)
	bin := filepath.Join(dir, "clock")
	cmd := exec.Command("go", "build", "-overlay", clockOverlay(t), "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, skew := range []time.Duration{2 * time.Minute, -2 * time.Minute} {
		run := exec.Command(bin)
		run.Env = append(os.Environ(), skewEnv+"="+skew.String())
		out, err := run.Output()
		if err != nil {
			t.Fatal(err)
		}
		var unix int64
		var since bool
		fmt.Sscan(string(out), &unix, &since)
		if off := time.Duration(unix-time.Now().Unix()) * time.Second; off < skew-2*time.Second || off > skew+2*time.Second {
			t.Errorf("with %s=%s the process's clock is %s off", skewEnv, skew, off)
		}
		if !since {
			t.Errorf("with %s=%s time.Since of a time.Now is not the elapsed time", skewEnv, skew)
		}
	}
}

// clockReceiver is a webhook receiver that counts the deliveries of each
// webhook-id and how far each webhook-timestamp is from its own clock;
// it answers after 100 ms, so tasks stay active a while, and after 10 s
// while slow.
type clockReceiver struct {
	slow       atomic.Bool
	mu         sync.Mutex
	delivered  map[string]int
	worstSkew  time.Duration
	outOfRange int // webhook-timestamps more than 5 minutes off: Standard Webhooks receivers refuse them
}

func (r *clockReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	io.Copy(io.Discard, req.Body)
	if r.slow.Load() {
		time.Sleep(10 * time.Second)
	} else {
		time.Sleep(100 * time.Millisecond)
	}
	ts, _ := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	off := time.Since(time.Unix(ts, 0)).Abs()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivered[req.Header.Get("webhook-id")]++
	r.worstSkew = max(r.worstSkew, off)
	if off > 5*time.Minute {
		r.outOfRange++
	}
	w.WriteHeader(http.StatusNoContent)
}

// uploadsWhileSkewed posts, until stop, a 256 KiB file with a
// Content-Length, then a 24 MiB one without (an S3 multipart upload
// open about 4 s), in turn, and counts the answers.
func uploadsWhileSkewed(apiURL string, stop <-chan struct{}) *uploadLoad {
	ul := &uploadLoad{other: map[string]int{}}
	small := pngLike(256<<10, 3)
	chunk := pngLike(1<<20, 4)
	client := &http.Client{Timeout: clientTimeout}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return ul
		default:
		}
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			fw, _ := mw.CreateFormFile("file", "f.png")
			var err error
			if i%2 == 0 {
				_, err = fw.Write(small)
			} else {
				for n := 0; n < 24 && err == nil; n++ { // 1 MiB every 150 ms
					time.Sleep(150 * time.Millisecond)
					_, err = fw.Write(chunk)
				}
			}
			if err == nil {
				err = mw.Close()
			}
			pw.CloseWithError(err)
		}()
		var body io.Reader = pr
		if i%2 == 0 {
			b, _ := io.ReadAll(pr) // a Content-Length: one PutObject
			body = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(http.MethodPost, apiURL+"/actions/upload", body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		ul.count(resp, err)
		pr.CloseWithError(io.ErrClosedPipe)
	}
}

// tusAcrossTheSkew creates a 2 MiB resumable upload with its first MiB,
// waits pause, sends the rest, and says what went wrong, if anything.
func tusAcrossTheSkew(apiURL string, pause time.Duration) error {
	data := pngLike(2<<20, 5)
	req, _ := http.NewRequest(http.MethodPost, apiURL+"/uploads/tus/?action=tusup&field=doc", bytes.NewReader(data[:1<<20]))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(data)))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("tus creation: %w", err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusCreated || loc == nil || resp.Header.Get("Upload-Offset") != strconv.Itoa(1<<20) {
		return fmt.Errorf("tus creation with 1 MiB: %d, Upload-Offset %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	time.Sleep(pause)
	req, _ = http.NewRequest(http.MethodPatch, loc.String(), bytes.NewReader(data[1<<20:]))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", strconv.Itoa(1<<20))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("tus PATCH after %s: %w", pause, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Formq-Upload-Ref") == "" {
		return fmt.Errorf("tus PATCH of the second MiB after %s: %d %s", pause, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 120)]))
	}
	return nil
}

// TestClocksApart runs the API and the workers with clocks 2 minutes
// apart, both ways, and two workers 2 minutes apart, under 50 posts/s
// for 20 s with a webhook step, uploads (one PutObject, and multipart
// uploads open for seconds) and a resumable upload paused for 40 s. The
// janitor sweeps every second with a minimum age of 60 s and tus uploads
// expire after 150 s: both shorter than the skew, so a janitor judging
// ages on its own clock takes what is still in use. Redis and S3 keep
// the true time. Expected: nothing acknowledged lost or doubled, every
// upload accepted and its file whole, the resumable upload finished,
// each webhook delivered once with a timestamp a Standard Webhooks
// receiver accepts (within 5 minutes), and the status links open. With
// two workers apart, the second starts while every task slot of the
// first is busy with a 10 s delivery: on its clock their leases look
// expired, and asynq's recoverer takes them back (the row counts them and
// fails when it caught none); no step may run twice for it.
func TestClocksApart(t *testing.T) {
	for _, tc := range []struct {
		name        string
		api, worker time.Duration
		second      time.Duration // a second worker's clock, started 5 s into the load; 0: none
	}{
		{name: "API clock 2m ahead (workers, Redis, S3 on time)", api: 2 * time.Minute},
		{name: "API clock 2m behind", api: -2 * time.Minute},
		{name: "worker clock 2m ahead (API, Redis, S3 on time)", worker: 2 * time.Minute},
		{name: "worker clock 2m behind", worker: -2 * time.Minute},
		{name: "two workers 2m apart (the second, ahead, started 5s into the load while every task slot of the first is busy)", second: 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := time.Now()
			r := testenv.StartRedis(t)
			recv := &clockReceiver{delivered: map[string]int{}}
			actionsFile := hookActions(t, recv, "backoff: 200ms", `  upload:
    uploads:
      file: {max_size: 64MB}
    max_body: 70MB
  tusup:
    uploads:
      doc: {max_size: 8MB, resumable: true}
`)
			s3 := testenv.StartS3(t)
			st := newStack(t, r.URL(), s3, map[string]string{"FORMQ_ACTIONS": actionsFile,
				"FORMQ_JANITOR_INTERVAL": "1s", "FORMQ_JANITOR_MIN_AGE": "60s", "FORMQ_TUS_EXPIRY": "150s"})
			apiBin, workerBin := skewedBinary(t, "./cmd/api"), skewedBinary(t, "./cmd/worker")
			with := func(skew time.Duration) map[string]string {
				env := maps.Clone(st.env)
				env[skewEnv] = skew.String()
				return env
			}
			api := start(t, apiBin, "api", with(tc.api))
			_ = start(t, workerBin, "worker", with(tc.worker))

			stop := make(chan struct{})
			var wg sync.WaitGroup
			var ul *uploadLoad
			wg.Go(func() { ul = uploadsWhileSkewed(api.URL, stop) })
			tusErr := make(chan error, 1)
			go func() { tusErr <- tusAcrossTheSkew(api.URL, 40*time.Second) }()
			if tc.second != 0 {
				go func() {
					// Deliveries taking 10 s for 2 s: every task slot of the
					// first worker is busy when the second starts.
					time.Sleep(4 * time.Second)
					recv.slow.Store(true)
					time.Sleep(time.Second)
					_ = start(t, workerBin, "worker-2", with(tc.second))
					time.Sleep(time.Second)
					recv.slow.Store(false)
				}()
			}
			l := runLoad(api.URL, 50, 20*time.Second)
			close(stop)
			wg.Wait()
			te := <-tusErr
			time.Sleep(3 * time.Second) // three more sweeps over the accepted files

			hr := measure(t, "clocks apart: "+tc.name, started, r.Client(t), l, 60*time.Second)
			hr.backAfter = notMeasured
			expect(t, &hr.failed, hr.acked == hr.posted, "%d of %d posts acknowledged (503: %d, other: %v)", hr.acked, hr.posted, hr.unavailable, hr.otherKinds)
			recv.mu.Lock()
			var twice int
			for _, n := range recv.delivered {
				if n > 1 {
					twice++
				}
			}
			expect(t, &hr.failed, twice == 0, "%d webhooks delivered more than once", twice)
			expect(t, &hr.failed, recv.outOfRange == 0, "%d webhook-timestamps more than 5 minutes off the receiver's clock", recv.outOfRange)
			worst := recv.worstSkew
			recv.mu.Unlock()
			expect(t, &hr.failed, te == nil, "resumable upload paused 40s: %v", te)
			expect(t, &hr.failed, ul.acked == ul.posted, "%d of %d uploads acknowledged: 503 %d, other %v", ul.acked, ul.posted, ul.unavailable, ul.other)
			keys, err := storeOf(t, s3).List(context.Background(), "uploads/upload/")
			if err != nil {
				t.Fatal(err)
			}
			expect(t, &hr.failed, len(keys) == ul.acked, "%d files in the bucket for %d acknowledged uploads", len(keys), ul.acked)
			linksErr := statusLinksOpen(api.URL, l)
			expect(t, &hr.failed, linksErr == nil, "status links: %v", linksErr)
			takenBack := leaseExpired(r.Client(t))
			if tc.second != 0 {
				expect(t, &hr.failed, takenBack > 0, "no task was taken back from the first worker: the row did not catch what it is about")
			}
			hr.scenario += fmt.Sprintf(" [uploads %d/%d, webhook-timestamp off by %s at most, %d tasks taken back for an expired lease]", ul.acked, ul.posted, worst.Round(time.Second), takenBack)
			record(t, hr)
		})
	}
}

// leaseExpired counts the finished tasks that asynq once took back from
// their worker for a lease it judged expired.
func leaseExpired(rdb redis.UniversalClient) int {
	insp := asynq.NewInspectorFromRedisClient(rdb)
	n := 0
	for _, q := range submission.AllQueues {
		for page := 1; ; page++ {
			tasks, err := insp.ListCompletedTasks(q, asynq.Page(page), asynq.PageSize(500))
			if err != nil || len(tasks) == 0 {
				break
			}
			for _, ti := range tasks {
				if ti.Retried > 0 && strings.Contains(ti.LastErr, "lease") {
					n++
				}
			}
		}
	}
	return n
}

// statusLinksOpen opens the status link of up to 20 acknowledged
// submissions.
func statusLinksOpen(apiURL string, l *load) error {
	l.mu.Lock()
	links := maps.Clone(l.links)
	l.mu.Unlock()
	n := 0
	for id, link := range links {
		if n++; n > 20 {
			break
		}
		if !strings.HasPrefix(link, "http") {
			link = apiURL + link
		}
		resp, err := http.Get(link)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %d", id, resp.StatusCode)
		}
	}
	if n == 0 {
		return fmt.Errorf("no status link was given")
	}
	return nil
}
