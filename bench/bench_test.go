// Package bench measures formq's upload path end to end: the API built as
// bin/api runs as its own process against real redis-server and versitygw,
// so its peak RSS (VmHWM) is the API's alone, and a direct SDK upload of
// the same bytes to the same S3 server, in the same run, is the yardstick
// for throughput. `make bench` runs it and prints a table.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/uploads"
)

func TestMain(m *testing.M) {
	serveFloor() // when run as the floor server of the form rows
	code := testenv.Main(m)
	PrintTable(os.Stdout)
	os.Exit(code)
}

// Sizes of the runs: the rows of the performance goals.
const (
	bigSize       = 1 << 30  // one stream of 1 GiB
	manySize      = 64 << 20 // 16 concurrent uploads of 64 MiB
	many          = 16
	avatarC       = 8       // concurrent 1 MiB avatars
	avatarN       = 160     // avatars per measurement
	partSize      = 8 << 20 // the default FORMQ_UPLOAD_PART_SIZE, for the direct multipart yardstick
	concurrent    = 64      // connections the clients keep
	uploadRepeats = 3       // each measurement runs this often; the median counts
)

// apiEnv is empty: the rows measure the deployment defaults. To try a
// tuning, FORMQ_BENCH_API_ENV="FORMQ_UPLOAD_PART_SIZE=16MB ..." adds it to
// the API's environment, and every row's note says so.
var apiEnv = func() map[string]string {
	env := map[string]string{}
	for _, kv := range strings.Fields(os.Getenv("FORMQ_BENCH_API_ENV")) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}()

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
	avatar := pngAvatar(b)
	load := loadAverage()
	idle := api.hwm(b)

	// Each measurement: the direct yardstick, then formq, alternating, so
	// that both see the same machine; the API's peak is reset before each
	// of its runs and the highest counts.
	var (
		avDirect, avDirectSum, avAPI, bigDirect, bigAPI, bigDeclared, bigMultipart, manyDirect, manyAPI series
	)
	// Each formq run gets an API process of its own, so that its peak
	// RSS is its own: the Go runtime returns freed memory to the system
	// only slowly, so a peak reset after a larger run would start high.
	measure := func(into *series, units float64, fn func() error, rss bool) {
		b.Helper()
		clean(b, store)
		if rss {
			api.stop()
			api = startAPI(b, r, s)
		}
		start := time.Now()
		if err := fn(); err != nil {
			b.Fatalf("%v\nthe API's log ends:\n%s", err, api.logTail())
		}
		into.add(units/time.Since(start).Seconds(), rss, api, b)
	}
	for range uploadRepeats {
		// 8 concurrent 1 MiB PNG avatars: acknowledgements per second.
		measure(&avDirect, avatarN, func() error {
			return parallelN(avatarN, avatarC, func(i int) error {
				return direct.put(ctx, fmt.Sprintf("direct/avatar-%d", i), bytes.NewReader(avatar), int64(len(avatar)))
			})
		}, false)
		measure(&avDirectSum, avatarN, func() error {
			return parallelN(avatarN, avatarC, func(i int) error {
				return direct.putChecksummed(ctx, fmt.Sprintf("direct/avatar-%d", i), avatar)
			})
		}, false)
		measure(&avAPI, avatarN, func() error {
			return parallelN(avatarN, avatarC, func(int) error {
				return postBytes(ctx, client, api.url, "bench-avatar", "avatar.png", "image/png", avatar)
			})
		}, true)

		// One 1 GiB stream, browser-style: the part declares no size.
		measure(&bigDirect, mib(bigSize), func() error {
			return direct.put(ctx, "direct/big", newGen(block, bigSize), bigSize)
		}, false)
		measure(&bigAPI, mib(bigSize), func() error { return postFile(ctx, client, api.url, block, bigSize, false) }, true)
		measure(&bigDeclared, mib(bigSize), func() error { return postFile(ctx, client, api.url, block, bigSize, true) }, true)
		measure(&bigMultipart, mib(bigSize), func() error {
			return direct.putMultipart(ctx, "direct/multipart", newGen(block, bigSize), partSize)
		}, false)

		// 16 concurrent 64 MiB uploads, browser-style.
		measure(&manyDirect, mib(many*manySize), func() error {
			return parallel(many, func(i int) error {
				return direct.put(ctx, fmt.Sprintf("direct/many-%d", i), newGen(block, manySize), manySize)
			})
		}, false)
		measure(&manyAPI, mib(many*manySize), func() error {
			return parallel(many, func(int) error { return postFile(ctx, client, api.url, block, manySize, false) })
		}, true)
	}
	clean(b, store)
	load = load + " → " + loadAverage()

	note := func(f, l *series) string {
		n := fmt.Sprintf("formq median of %d (range %s–%s)", len(f.v), num(f.min()), num(f.max()))
		if l != nil {
			n += fmt.Sprintf(", limit range %s–%s", num(l.min()), num(l.max()))
		}
		if tuning := os.Getenv("FORMQ_BENCH_API_ENV"); tuning != "" {
			n += "; API tuning " + tuning
		} else {
			n += "; API at its defaults"
		}
		n += "; load average " + load
		if k := refused.Load(); k > 0 {
			n += fmt.Sprintf("; %d posts of the whole run were answered 503 (the S3 probe timed out under load) and sent again", k)
		}
		return n
	}
	row := func(work string, f, l *series, unit, limitName string) {
		AddRow(Row{Group: "uploads", Work: work, Formq: f.median(), Limit: l.median(), Unit: unit, LimitName: limitName,
			HigherIsBetter: true, PeakRSS: f.rss, Note: note(f, l)})
	}
	row(fmt.Sprintf("1 MiB PNG avatar, c=%d", avatarC), &avAPI, &avDirect, "acks/s", "direct PUTs of the same file, c=8")
	row("  direct PUTs with the file's SHA-256, which the server checks (as formq sends it), for scale", &avDirectSum, &avDirect, "acks/s", "direct PUTs without a checksum")
	row("one 1 GiB upload, browser-style (multipart, no part size)", &bigAPI, &bigDirect, "MiB/s", "direct streaming PUT")
	row("  same, part declares its size", &bigDeclared, &bigDirect, "MiB/s", "direct streaming PUT")
	row("  direct SDK multipart upload (8 MiB parts), for scale", &bigMultipart, &bigDirect, "MiB/s", "direct streaming PUT")
	row(fmt.Sprintf("%d x %d MiB at once, browser-style", many, manySize>>20), &manyAPI, &manyDirect, "MiB/s", "direct streaming PUTs")
	AddRow(Row{Group: "uploads", Work: "API idle after start", PeakRSS: idle, Note: "VmHWM before any upload"})

	b.ReportMetric(bigAPI.median()/bigDirect.median()*100, "%-of-direct-1GiB")
	b.ReportMetric(manyAPI.median()/manyDirect.median()*100, "%-of-direct-16x64")
	b.ReportMetric(avAPI.median(), "avatar-acks/s")
	b.ReportMetric(float64(avAPI.rss)/(1<<20), "avatar-VmHWM-MiB")
	b.ReportMetric(float64(bigAPI.rss)/(1<<20), "1GiB-VmHWM-MiB")
	b.ReportMetric(float64(manyAPI.rss)/(1<<20), "16x64-VmHWM-MiB")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// series are the repeats of one measurement, and the API's peak RSS over
// them where measured.
type series struct {
	v   []float64
	rss int64
}

func (s *series) add(v float64, rss bool, api *apiProcess, b *testing.B) {
	s.v = append(s.v, v)
	if rss {
		s.rss = max(s.rss, api.hwm(b))
	}
}

func (s *series) sorted() []float64 {
	v := append([]float64(nil), s.v...)
	sort.Float64s(v)
	return v
}

func (s *series) median() float64 {
	if s == nil || len(s.v) == 0 {
		return 0
	}
	v := s.sorted()
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
func (s *series) min() float64 { return s.sorted()[0] }
func (s *series) max() float64 { return s.sorted()[len(s.v)-1] }

// loadAverage is the machine's 1-minute load average: the machine is
// shared, and the table says how busy it was.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// pngAvatar is a real PNG of about 1 MiB: noise does not compress.
func pngAvatar(b *testing.B) []byte {
	b.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 512, 512))
	_, _ = rand.NewChaCha8([32]byte{7}).Read(img.Pix)
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
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

// parallelN runs fn n times, c at a time.
func parallelN(n, c int, fn func(int) error) error {
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	return parallel(c, func(int) error {
		for i := range next {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	})
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

// refused counts answers 503 that were tried again: under heavy load the
// API's background S3 probe can time out and turn submissions away for a
// moment. The rows' notes report the count; the time they cost counts.
var refused atomic.Int64

// retried runs post again, a few times, while it is answered 503.
func retried(post func() (int, error)) error {
	for i := 0; ; i++ {
		code, err := post()
		if code != http.StatusServiceUnavailable || i == 5 {
			return err
		}
		refused.Add(1)
		time.Sleep(200 * time.Millisecond)
	}
}

// postBytes posts one small file, the action's only part after a name.
func postBytes(ctx context.Context, c *http.Client, apiURL, action, filename, contentType string, data []byte) error {
	return retried(func() (int, error) { return postBytesOnce(ctx, c, apiURL, action, filename, contentType, data) })
}

func postBytesOnce(ctx context.Context, c *http.Client, apiURL, action, filename, contentType string, data []byte) (int, error) {
	body := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbench\r\n" +
		"--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename + "\"\r\n" +
		"Content-Type: " + contentType + "\r\n\r\n" + string(data) + "\r\n--" + boundary + "--\r\n"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/actions/"+action, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	return sendUpload(c, req, int64(len(data)))
}

// postFile streams one file of size bytes through POST /actions/bench-upload.
//
// declare adds the file part's own Content-Length header, as a script can
// (browsers do not): the API then streams one PutObject instead of a
// multipart upload.
func postFile(ctx context.Context, c *http.Client, apiURL string, block []byte, size int64, declare bool) error {
	return retried(func() (int, error) { return postFileOnce(ctx, c, apiURL, block, size, declare) })
}

func postFileOnce(ctx context.Context, c *http.Client, apiURL string, block []byte, size int64, declare bool) (int, error) {
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
		return 0, err
	}
	req.ContentLength = int64(len(head)) + size + int64(len(tail))
	return sendUpload(c, req, size)
}

// boundary separates the parts of the benchmark's uploads.
const boundary = "formqbenchboundary7d1f0c9a5e3b4f62"

// sendUpload sends a multipart upload and checks that the API accepted a
// file of size bytes.
func sendUpload(c *http.Client, req *http.Request, size int64) (int, error) {
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(raw), fmt.Sprintf(`"size":%d`, size)) {
		return resp.StatusCode, fmt.Errorf("API answered %d: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, nil
}

// apiProcess is bin/api running as its own process.
type apiProcess struct {
	url  string
	pid  int
	log  string // its log file
	stop func() // ends the process and waits for it; once
}

// The API binary is built once per benchmark (each formq run of the
// upload rows starts a process of its own).
var apiBins sync.Map // *testing.B → path

// startAPI runs bin/api on r and s; extra are more KEY=value settings,
// overriding the benchmark's defaults.
func startAPI(b *testing.B, r testenv.Redis, s testenv.S3, extra ...string) *apiProcess {
	b.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin, ok := apiBins.Load(b)
	if !ok {
		bin = testenv.Build(b, "", "./cmd/api")
		apiBins.Store(b, bin)
	}
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
	cmd := exec.Command(bin.(string))
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
	p := &apiProcess{url: "http://" + addr, pid: cmd.Process.Pid, log: logPath}
	p.stop = sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
	})
	b.Cleanup(p.stop)
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

// logTail is the end of the process's log, for a failed run.
func (p *apiProcess) logTail() string {
	raw, _ := os.ReadFile(p.log)
	return string(raw[max(0, len(raw)-4000):])
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
