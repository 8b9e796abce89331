// Package bench measures formq's upload path end to end: the API built as
// bin/api runs as its own process against real redis-server and versitygw,
// so its peak RSS (VmHWM) is the API's alone, and a direct SDK upload of
// the same bytes to the same S3 server, in the same run, is the yardstick
// for throughput. `make bench` runs it and prints a table.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/uploads"
)

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	PrintTable(os.Stdout)
	os.Exit(code)
}

// Sizes of the runs.
const (
	bigSize    = 1 << 30 // one stream of 1 GiB
	smallSize  = 8 << 20 // 64 concurrent uploads of 8 MiB
	partSize   = 8 << 20 // the API's FORMQ_UPLOAD_PART_SIZE below
	concurrent = 64
	rounds     = 2 // each 1 GiB measurement runs this often; the best counts
)

// apiEnv is the tuning the benchmark runs the API with: what
// docs/configuration.md recommends for a memory-bounded deployment.
var apiEnv = map[string]string{
	"FORMQ_UPLOAD_PART_SIZE": "8MB",
	"FORMQ_UPLOAD_MEMORY":    "32MB",
	"GOMEMLIMIT":             "48MiB",
}

func BenchmarkUploads(b *testing.B) {
	for range b.N {
		runUploads(b)
	}
}

func runUploads(b *testing.B) {
	ctx := testenv.Context(b)
	r := testenv.StartRedis(b)
	s := testenv.StartS3(b)
	store, err := uploads.NewStore(ctx, uploads.Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		b.Fatal(err)
	}
	api := startAPI(b, r, s)
	direct := newDirectClient(b, s)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: concurrent, WriteBufferSize: 256 << 10, ReadBufferSize: 64 << 10,
	}}
	block := randomBlock(1 << 20)

	var res results
	res.idleRSS = api.hwm(b)

	// 1 GiB: direct and through the API, alternating, best of rounds.
	for i := range rounds {
		d := timed(func() error { return direct.put(ctx, fmt.Sprintf("direct/big-%d", i), newGen(block, bigSize), bigSize) })
		res.direct = best(res.direct, d, bigSize, b)
		clean(b, store)
		api.resetHWM(b)
		a := timed(func() error { return postFile(ctx, client, api.url, block, bigSize, true) })
		res.api = best(res.api, a, bigSize, b)
		res.apiRSS = max(res.apiRSS, api.hwm(b))
		clean(b, store)
	}
	// The same 1 GiB as a browser sends it: no declared size, so a
	// multipart upload with two part buffers. Its yardstick is the SDK
	// sending the same bytes of unknown size as a multipart upload.
	d := timed(func() error { return direct.putMultipart(ctx, "direct/multipart", newGen(block, bigSize), partSize) })
	res.directMultipart = best(0, d, bigSize, b)
	clean(b, store)
	api.resetHWM(b)
	a := timed(func() error { return postFile(ctx, client, api.url, block, bigSize, false) })
	res.apiBrowser = best(0, a, bigSize, b)
	res.apiBrowserRSS = api.hwm(b)
	clean(b, store)

	// 64 concurrent 8 MiB uploads.
	d = timed(func() error {
		return parallel(concurrent, func(i int) error {
			return direct.put(ctx, fmt.Sprintf("direct/small-%d", i), newGen(block, smallSize), smallSize)
		})
	})
	res.directMany = best(0, d, concurrent*smallSize, b)
	clean(b, store)
	api.resetHWM(b)
	a = timed(func() error {
		return parallel(concurrent, func(int) error { return postFile(ctx, client, api.url, block, smallSize, false) })
	})
	res.apiMany = best(0, a, concurrent*smallSize, b)
	res.apiManyRSS = api.hwm(b)
	clean(b, store)

	res.rows()
	b.ReportMetric(res.api, "api-MiB/s")
	b.ReportMetric(res.direct, "direct-MiB/s")
	b.ReportMetric(res.api/res.direct*100, "%-of-direct")
	b.ReportMetric(float64(res.apiRSS)/(1<<20), "api-VmHWM-MiB")
	b.ReportMetric(res.apiBrowser, "api-multipart-MiB/s")
	b.ReportMetric(float64(res.apiManyRSS)/(1<<20), "api64-VmHWM-MiB")
}

// results are MiB/s and bytes.
type results struct {
	direct, api, directMultipart, apiBrowser   float64
	directMany, apiMany                        float64
	idleRSS, apiRSS, apiBrowserRSS, apiManyRSS int64
}

// rows adds the upload measurements to the table TestMain prints.
func (r results) rows() {
	note := "API tuning: " + envString(apiEnv)
	up := func(work string, formq, limit float64, limitName string, rss int64) {
		AddRow(Row{Group: "uploads", Work: work, Formq: formq, Limit: limit, Unit: "MiB/s", LimitName: limitName,
			HigherIsBetter: true, PeakRSS: rss, Note: note})
	}
	up("1 GiB, one stream, size declared (best of 2)", r.api, r.direct, "direct streaming PUT", r.apiRSS)
	up("1 GiB, one stream, browser-style (multipart)", r.apiBrowser, r.direct, "direct streaming PUT", r.apiBrowserRSS)
	up("  same, against a direct SDK multipart upload", r.apiBrowser, r.directMultipart, "direct SDK multipart", r.apiBrowserRSS)
	up(fmt.Sprintf("%d x %d MiB concurrently", concurrent, smallSize>>20), r.apiMany, r.directMany, "direct PUTs", r.apiManyRSS)
	AddRow(Row{Group: "uploads", Work: "API idle after start", PeakRSS: r.idleRSS, Unit: "", Note: "VmHWM before any upload"})
}

func envString(env map[string]string) string {
	var parts []string
	for _, k := range []string{"FORMQ_UPLOAD_PART_SIZE", "FORMQ_UPLOAD_MEMORY", "GOMEMLIMIT", "GOGC"} {
		if v, ok := env[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func runtimeCPUs() int {
	n, err := os.ReadFile("/sys/fs/cgroup/cpu.max")
	if err == nil {
		f := strings.Fields(string(n))
		if len(f) == 2 && f[0] != "max" {
			q, _ := strconv.Atoi(f[0])
			p, _ := strconv.Atoi(f[1])
			if p > 0 {
				return q / p
			}
		}
	}
	return numCPU()
}

func timed(fn func() error) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		start := time.Now()
		err := fn()
		return time.Since(start), err
	}
}

// best runs a measurement and keeps the higher of prev and its MiB/s.
func best(prev float64, run func() (time.Duration, error), bytes int64, b *testing.B) float64 {
	b.Helper()
	d, err := run()
	if err != nil {
		b.Fatal(err)
	}
	return max(prev, float64(bytes)/(1<<20)/d.Seconds())
}

func parallel(n int, fn func(int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// clean deletes what a run stored, so the disk holds one run at a time.
func clean(b *testing.B, st *uploads.Store) {
	b.Helper()
	ctx := context.Background()
	for _, prefix := range []string{"uploads/", "direct/"} {
		keys, err := st.List(ctx, prefix)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Delete(ctx, keys...); err != nil {
			b.Fatal(err)
		}
	}
}

func randomBlock(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{42}).Read(b)
	return b
}

// gen yields n bytes by repeating block: a file of any size without
// holding it in memory or on disk.
type gen struct {
	block []byte
	left  int64
	off   int
}

func newGen(block []byte, n int64) *gen { return &gen{block: block, left: n} }

func (g *gen) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n := copy(p, g.block[g.off:])
	g.off = (g.off + n) % len(g.block)
	g.left -= int64(n)
	return n, nil
}

// postFile streams one file of size bytes through POST /actions/bench-upload.
//
// declare adds the file part's own Content-Length header, as a script can
// (browsers do not): the API then streams one PutObject instead of a
// multipart upload.
func postFile(ctx context.Context, c *http.Client, apiURL string, block []byte, size int64, declare bool) error {
	const boundary = "formqbenchboundary7d1f0c9a5e3b4f62"
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbench\r\n" +
		"--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n" +
		"Content-Type: application/octet-stream\r\n"
	if declare {
		head += fmt.Sprintf("Content-Length: %d\r\n", size)
	}
	head += "\r\n"
	tail := "\r\n--" + boundary + "--\r\n"
	body := io.MultiReader(strings.NewReader(head), newGen(block, size), strings.NewReader(tail))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/actions/bench-upload", body)
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(head)) + size + int64(len(tail))
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(raw), fmt.Sprintf(`"size":%d`, size)) {
		return fmt.Errorf("API answered %d: %s", resp.StatusCode, raw)
	}
	return nil
}

// apiProcess is bin/api running as its own process.
type apiProcess struct {
	url string
	pid int
}

// startAPI runs bin/api on r and s; extra are more KEY=value settings,
// overriding the benchmark's defaults.
func startAPI(b *testing.B, r testenv.Redis, s testenv.S3, extra ...string) *apiProcess {
	b.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin := testenv.Build(b, "", "./cmd/api")
	addr, err := testenv.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(),
		"FORMQ_ENV=development", "FORMQ_ADDR="+addr, "FORMQ_REDIS_URL="+r.URL(),
		"FORMQ_ACTIONS="+filepath.Join(root, "bench", "testdata", "actions.yaml"), "FORMQ_LOG_LEVEL=warn",
	)
	for k, v := range s.Env() {
		env = append(env, k+"="+v)
	}
	for k, v := range apiEnv {
		env = append(env, k+"="+v)
	}
	env = append(env, extra...)
	cmd := exec.Command(bin)
	cmd.Env = env
	logPath := filepath.Join(b.TempDir(), "api.log")
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
	})
	p := &apiProcess{url: "http://" + addr, pid: cmd.Process.Pid}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			b.Fatalf("bin/api did not become healthy: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hwm reads the process's peak resident set size.
func (p *apiProcess) hwm(b *testing.B) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// resetHWM starts a new peak (Linux clear_refs 5), so each run reports its
// own; where that is not allowed the peak covers the whole process life.
func (p *apiProcess) resetHWM(b *testing.B) {
	b.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.pid), []byte("5"), 0); err != nil {
		b.Logf("cannot reset VmHWM (%v); peaks are since the API started", err)
	}
}
