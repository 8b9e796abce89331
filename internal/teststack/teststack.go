// Package teststack runs formq's API and worker on port 0 against the
// real servers of testenv, for end-to-end tests: in-process (Start), as
// processes of their own (StartProcess), or as replicas, two built APIs
// and two built workers on one Redis and S3 (StartReplicas).
package teststack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/uploads"
	"github.com/formq/formq/worker"
	"github.com/redis/go-redis/v9"
)

// ActionsFile is the seed's actions file the demo serves.
func ActionsFile(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deployments", "local", "actions.yaml")
}

// Stack is one API and one worker process on real Redis and S3, each
// test with its own database and bucket.
type Stack struct {
	APIURL    string // the API, like http://127.0.0.1:PORT
	WorkerURL string // the worker's health and metrics address
	Env       map[string]string
	Store     *uploads.Store // the same bucket, for looking at what was stored
	RDB       *redis.Client  // the same Redis database
	Redis     testenv.Redis
	S3        testenv.S3
}

// Start runs an API and a worker with extraEnv over the test defaults.
func Start(t *testing.T, extraEnv map[string]string) *Stack {
	t.Helper()
	return StartOn(t, testenv.StartRedis(t), testenv.StartS3(t), extraEnv)
}

// StartOn is Start on the given Redis and S3, such as a test's private
// servers (testenv.StartPrivateRedis, StartPrivateS3) it stops on purpose.
func StartOn(t *testing.T, r testenv.Redis, s testenv.S3, extraEnv map[string]string) *Stack {
	t.Helper()
	env := defaultEnv(t, r, s, extraEnv)
	st := &Stack{Env: env, Redis: r, S3: s}
	st.APIURL = StartRun(t, "api", api.Main, env)
	st.WorkerURL = StartRun(t, "worker", worker.Main, env)
	st.Store = newStore(t, s)
	st.RDB = r.Client(t)
	return st
}

// RunFunc is the signature of api.Main and worker.Main.
type RunFunc func(context.Context, []string, func(string) string, io.Writer) error

// StartRun calls a process's run on port 0 and returns its URL, read from
// its "listening" log line. The process stops when the test ends.
func StartRun(t *testing.T, name string, run RunFunc, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var runErr error
	go func() {
		runErr = run(ctx, []string{name}, func(k string) string { return env[k] }, pw)
		pw.CloseWithError(io.EOF)
		close(done)
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			var line struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && !sent {
				addr <- line.URL
				sent = true
			} else if !strings.Contains(sc.Text(), `"level":"INFO"`) {
				t.Logf("%s: %s", name, sc.Text())
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil && !t.Failed() {
				t.Errorf("%s run returned %v", name, runErr)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s of its context ending", name)
		}
	})
	select {
	case u := <-addr:
		WaitOK(t, u+"/healthz")
		return u
	case <-done:
		t.Fatalf("%s stopped at start: %v", name, runErr)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start listening within 30s", name)
	}
	return ""
}

// WaitOK polls url until it answers 200.
func WaitOK(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

// MultipartBody builds a form with values and one file per entry.
func MultipartBody(t *testing.T, values map[string]string, files map[string][]byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range values {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for field, data := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+field+`"; filename="me.png"`)
		h.Set("Content-Type", "application/octet-stream")
		p, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		p.Write(data)
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

// Post sends a body and returns the answer without following redirects.
func Post(t *testing.T, url string, body io.Reader, contentType string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	h := map[string]string{"Content-Type": contentType}
	for k, v := range header {
		h[k] = v
	}
	return Do(t, http.MethodPost, url, body, h)
}

// Do sends a request and returns the answer and its body, without following
// redirects. A header given an empty value is left out (or removed).
func Do(t *testing.T, method, url string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// WaitFor polls cond until it holds or fails the test after timeout.
func WaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// PNGLike is size random bytes (seeded) that sniff as PNG.
func PNGLike(size int, seed uint64) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	return b
}

// Gauge reads one unlabelled series from the /metrics of base.
func Gauge(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("%s not in /metrics", name)
	return 0
}

// Trickle posts a multipart form to url as a slow client would, from
// address 198.51.100.{n+1} (X-Forwarded-For: the API must trust
// 127.0.0.1): the text fields first (name=value pairs), then a PNG-like
// file part named field of head bytes, then one more byte every 100 ms,
// for at most d or until ctx ends. It answers the status, 0 when the
// request failed.
func Trickle(ctx context.Context, client *http.Client, url, field string, head, n int, d time.Duration, fields ...string) (int, error) {
	pr, pw := io.Pipe()
	defer pr.CloseWithError(io.EOF)
	mw := multipart.NewWriter(pw)
	go func() {
		for i := 0; i+1 < len(fields); i += 2 {
			mw.WriteField(fields[i], fields[i+1])
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+field+`"; filename="slow.png"`)
		h.Set("Content-Type", "image/png")
		p, _ := mw.CreatePart(h)
		if _, err := p.Write(PNGLike(head, uint64(n))); err != nil {
			return
		}
		for range d / (100 * time.Millisecond) {
			select {
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := p.Write([]byte{0}); err != nil {
				return
			}
		}
		mw.Close()
		pw.Close()
	}()
	resp, err := PostFrom(client, url, mw.FormDataContentType(), pr, fmt.Sprintf("198.51.100.%d", n+1))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// PostFrom posts body to url as a script would (Accept: application/json)
// from the client address ip (X-Forwarded-For: the API must trust
// 127.0.0.1).
func PostFrom(client *http.Client, url, contentType string, body io.Reader, ip string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	return client.Do(req)
}

// AnswerWhileSending writes req on a connection of its own and reads the
// answer at the same time, as a browser does (Go's client stops reading
// when its write fails): the status and Retry-After, or how the
// connection ended without an answer.
func AnswerWhileSending(req *http.Request) string {
	conn, err := net.Dial("tcp", req.URL.Host)
	if err != nil {
		return "cut off: " + err.Error()
	}
	defer conn.Close()
	go req.Write(conn) // fails once the server closes; the answer tells
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return "cut off: " + err.Error()
	}
	resp.Body.Close()
	return fmt.Sprintf("%d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
}
