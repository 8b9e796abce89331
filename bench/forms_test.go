package bench

// The small-form rows: bin/api accepting a three-field form without files
// at c=16, beside raw asynq Enqueue of a task of the same size to the same
// Redis in the same run; and the same form refused with 422.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
)

const (
	formClients = 16              // concurrent clients of the form rows
	formWindow  = 3 * time.Second // length of one measurement
	repeats     = 3               // each row is the median of this many windows
)

// validForm and invalidForm are the bodies posted to bench-form.
var (
	validForm   = url.Values{"name": {"Ada Lovelace"}, "email": {"ada@example.com"}, "message": {"Hello from the benchmark."}}.Encode()
	invalidForm = url.Values{"name": {"Ada Lovelace"}, "email": {"not an address"}, "message": {"Hello from the benchmark."}}.Encode()
)

func BenchmarkForms(b *testing.B) {
	for range b.N {
		runForms(b)
	}
}

func runForms(b *testing.B) {
	ctx := testenv.Context(b)
	r := testenv.StartRedis(b)
	s := testenv.StartS3(b)
	ensureBucket(b, s)
	// The API as users run it: access log at the default level.
	api := startAPI(b, r, s, "FORMQ_LOG_LEVEL=info")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: formClients}}
	rdb := r.Client(b)
	raw := asynq.NewClientFromRedisClient(rdb)
	payload := rawPayload(b)
	answer, err := formAnswer(ctx, client, api.url, validForm, http.StatusAccepted)
	if err != nil {
		b.Fatal(err)
	}
	floor := startFloor(b, string(answer))

	var valid, cpu, enq, invalid, invalidCPU, floorCPU []float64
	var rss int64
	for range repeats {
		api.resetHWM(b)
		t0 := api.cpu(b)
		n, d := hammer(ctx, b, formClients, formWindow, func() error { return postForm(ctx, client, api.url, validForm, http.StatusAccepted) })
		cpu = append(cpu, float64(api.cpu(b)-t0)/float64(n))
		valid = append(valid, float64(n)/d.Seconds())
		rss = max(rss, api.hwm(b))

		n, d = hammer(ctx, b, formClients, formWindow, func() error {
			_, err := raw.EnqueueContext(ctx, asynq.NewTask("bench:raw", payload))
			return err
		})
		enq = append(enq, float64(n)/d.Seconds())

		t0 = floor.cpu(b)
		n, _ = hammer(ctx, b, formClients, formWindow, func() error { return postForm(ctx, client, floor.url, validForm, http.StatusAccepted) })
		floorCPU = append(floorCPU, float64(floor.cpu(b)-t0)/float64(n))

		t0 = api.cpu(b)
		n, d = hammer(ctx, b, formClients, formWindow, func() error {
			return postForm(ctx, client, api.url, invalidForm, http.StatusUnprocessableEntity)
		})
		invalidCPU = append(invalidCPU, float64(api.cpu(b)-t0)/float64(n))
		invalid = append(invalid, float64(n)/d.Seconds())
		// Keep Redis small between windows: nothing drains the queues.
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
	AddRow(Row{Group: "forms", Work: "small valid form, c=16", Formq: median(valid), Limit: median(enq), Unit: "/s",
		LimitName: fmt.Sprintf("raw asynq Enqueue of a %d-byte task", len(payload)), HigherIsBetter: true, PeakRSS: rss,
		Note: fmt.Sprintf("median of %d (range %s; raw %s); API CPU %s µs per accepted submission (range %s); %s",
			repeats, spread(valid), spread(enq), num(median(cpu)), spread(cpu), loadNote())})
	AddRow(Row{Group: "forms", Work: "  API CPU per accepted form", Formq: median(cpu), Limit: median(floorCPU), Unit: "µs",
		LimitName: "net/http alone parsing the form and answering formq's 202 body",
		Note:      fmt.Sprintf("median of %d (range %s; net/http %s); the ratio is net/http's share of formq's CPU", repeats, spread(cpu), spread(floorCPU))})
	AddRow(Row{Group: "forms", Work: "small invalid form (422), c=16", Formq: median(invalid), Unit: "/s",
		Note: fmt.Sprintf("median of %d (range %s); API CPU %s µs each (range %s)", repeats, spread(invalid), num(median(invalidCPU)), spread(invalidCPU))})
	b.ReportMetric(median(valid), "acks/s")
	b.ReportMetric(median(cpu), "api-µs/ack")
}

// rawPayload is a task payload as large as the bench form's submission.
func rawPayload(b *testing.B) []byte {
	b.Helper()
	sub := submission.Submission{
		ID: "01KBENCHBENCHBENCHBENCHBENC", Action: "bench-form", Queue: submission.DefaultQueue,
		Values:     map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "message": "Hello from the benchmark."},
		Files:      []submission.File{},
		Request:    submission.Request{ClientIP: "127.0.0.1", UserAgent: "Go-http-client/1.1", RequestID: "bench-request-id-0123456789abcdef"},
		ReceivedAt: time.Now().UTC(), Revalidate: submission.Revalidate{Paths: []string{}, Tags: []string{}},
	}
	p, err := json.Marshal(sub)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// formAnswer posts body to bench-form and answers the API's answer; it
// is an error unless the answer's status is want.
func formAnswer(ctx context.Context, c *http.Client, apiURL, body string, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/actions/bench-form", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("API answered %d, want %d: %s", resp.StatusCode, want, raw)
	}
	return raw, err
}

func postForm(ctx context.Context, c *http.Client, apiURL, body string, want int) error {
	_, err := formAnswer(ctx, c, apiURL, body, want)
	return err
}

// hammer runs fn from c goroutines for about d and answers how many calls
// succeeded and how long they took; any error fails the benchmark.
func hammer(ctx context.Context, b *testing.B, c int, d time.Duration, fn func() error) (int, time.Duration) {
	b.Helper()
	var n atomic.Int64
	var first atomic.Value
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for time.Now().Before(stop) && ctx.Err() == nil {
				if err := fn(); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		b.Fatal(err)
	}
	return int(n.Load()), time.Since(start)
}

// cpu is the process's user and system CPU time so far, in µs.
func (p *apiProcess) cpu(b *testing.B) int64 { return procCPU(b, p.pid) }

func procCPU(b *testing.B, pid int) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name may hold spaces: fields count from after its ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("cannot read CPU times from /proc/%d/stat", pid)
	}
	return (utime + stime) * 1_000_000 / clockTicks()
}

var clockTicks = sync.OnceValue(func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if n, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && perr == nil && n > 0 {
		return n
	}
	return 100
})

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// spread is a measurement's range, "low–high".
func spread(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	return num(slices.Min(v)) + "–" + num(slices.Max(v))
}

// loadNote states the machine's load average, so a row measured on a
// busy machine says so.
func loadNote() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "load average unknown"
	}
	return "load average " + strings.Join(f[:3], " ")
}

func ensureBucket(b *testing.B, s testenv.S3) *uploads.Store {
	b.Helper()
	store, err := uploads.NewStore(testenv.Context(b), uploads.Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.EnsureBucket(testenv.Context(b)); err != nil {
		b.Fatal(err)
	}
	return store
}
