// Package testenv starts the real servers formq's integration tests run
// against: one redis-server and one versitygw (S3, posix backend) per test
// binary, on free loopback ports, in a temporary directory. Each test gets
// its own Redis database and its own S3 bucket, so tests never see each
// other's data. Missing binaries fail the test loudly with how to get them.
package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Credentials of the test S3 server's root account.
const (
	S3AccessKey = "formqtest"
	S3SecretKey = "formqtestsecret"
	S3Region    = "us-east-1"
)

// redisDatabases is how many databases the test Redis offers; each test
// takes a fresh one.
const redisDatabases = 4096

var (
	mu      sync.Mutex
	procs   []*exec.Cmd
	tmpRoot string

	redisOnce sync.Once
	redisAddr string
	redisErr  error
	redisDB   atomic.Int64

	s3Once     sync.Once
	s3Endpoint string
	s3Root     string
	s3Err      error
	bucketN    atomic.Int64
)

// Main runs the tests of a package and stops the servers they started.
// Use it from TestMain: func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop ends every server this package started and removes its files.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	procs = nil
	if tmpRoot != "" {
		_ = os.RemoveAll(tmpRoot)
		tmpRoot = ""
	}
}

func tempRoot() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if tmpRoot == "" {
		d, err := os.MkdirTemp("", "formq-testenv-")
		if err != nil {
			return "", err
		}
		tmpRoot = d
	}
	return tmpRoot, nil
}

// RepoRoot is the directory holding go.mod, found from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a loopback address with a port that was free a moment ago.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func lookBinary(name, envVar, hint string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		return p, nil
	}
	if root, err := RepoRoot(); err == nil {
		if p := filepath.Join(root, "bin", name); isExec(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found (looked in $%s, ./bin and PATH): %s", name, envVar, hint)
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// start launches a server process that dies with the test binary.
func start(name string, args []string, logPath string) (*exec.Cmd, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	logf.Close()
	mu.Lock()
	procs = append(procs, cmd)
	mu.Unlock()
	return cmd, nil
}

func waitTCP(addr string, timeout time.Duration, logPath string) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, _ := os.ReadFile(logPath)
	return fmt.Errorf("server on %s not reachable after %s; its log:\n%s", addr, timeout, tail(string(out), 2000))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Redis describes one test's slice of the shared redis-server.
type Redis struct {
	Addr string
	DB   int
}

// URL is the FORMQ_REDIS_URL for this test's database.
func (r Redis) URL() string { return fmt.Sprintf("redis://%s/%d", r.Addr, r.DB) }

// StartRedis starts (once per binary) the shared redis-server and returns a
// fresh database for the test. The database is flushed when the test ends.
func StartRedis(t testing.TB) Redis {
	t.Helper()
	redisOnce.Do(func() { redisAddr, redisErr = startRedis() })
	if redisErr != nil {
		t.Fatalf("testenv: %v", redisErr)
	}
	db := int(redisDB.Add(1))
	if db >= redisDatabases {
		t.Fatalf("testenv: out of Redis databases (%d)", redisDatabases)
	}
	r := Redis{Addr: redisAddr, DB: db}
	t.Cleanup(func() { _ = redisCommand(redisAddr, db, "FLUSHDB") })
	return r
}

func startRedis() (string, error) {
	bin, err := lookBinary("redis-server", "FORMQ_REDIS_SERVER", "run 'make test' (it installs it) or 'apt-get install redis-server'")
	if err != nil {
		return "", err
	}
	root, err := tempRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var lastErr error
	for range 3 {
		addr, err := FreePort()
		if err != nil {
			return "", err
		}
		host, port, _ := net.SplitHostPort(addr)
		logPath := filepath.Join(dir, "redis-"+port+".log")
		cmd, err := start(bin, []string{
			"--bind", host, "--port", port, "--dir", dir,
			"--save", "", "--appendonly", "yes", "--appendfsync", "no",
			"--maxmemory-policy", "noeviction",
			"--databases", strconv.Itoa(redisDatabases),
			"--daemonize", "no", "--protected-mode", "yes",
		}, logPath)
		if err != nil {
			return "", fmt.Errorf("start redis-server: %w", err)
		}
		if lastErr = waitRedis(addr, 10*time.Second); lastErr == nil {
			fmt.Fprintf(os.Stderr, "testenv: started real redis-server %s (pid %d) on %s\n", version(bin), cmd.Process.Pid, addr)
			return addr, nil
		}
		_ = cmd.Process.Kill()
	}
	return "", lastErr
}

func waitRedis(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = redisCommand(addr, 0, "PING"); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s not ready: %w", addr, err)
}

// redisCommand sends one inline command without a client library, so the
// harness does not depend on the code under test.
func redisCommand(addr string, db int, cmd string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for _, line := range []string{"SELECT " + strconv.Itoa(db), cmd} {
		if _, err := fmt.Fprintf(c, "%s\r\n", line); err != nil {
			return err
		}
		reply, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.HasPrefix(reply, "-") {
			return errors.New(strings.TrimSpace(reply[1:]))
		}
	}
	return nil
}

func version(bin string) string {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// S3 describes one test's bucket on the shared versitygw server.
type S3 struct {
	Endpoint  string
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
	// Dir is the bucket's directory on disk (posix backend), for tests that
	// look at what the server holds without going through S3.
	Dir string
}

// Env returns the FORMQ_* settings pointing at this bucket.
func (s S3) Env() map[string]string {
	return map[string]string{
		"FORMQ_S3_ENDPOINT":   s.Endpoint,
		"FORMQ_S3_REGION":     s.Region,
		"FORMQ_S3_BUCKET":     s.Bucket,
		"FORMQ_S3_ACCESS_KEY": s.AccessKey,
		"FORMQ_S3_SECRET_KEY": s.SecretKey,
	}
}

// StartS3 starts (once per binary) the shared versitygw server and names a
// fresh bucket for the test. The bucket does not exist yet: callers create
// it (formq does with FORMQ_S3_CREATE_BUCKET, tests with the store).
func StartS3(t testing.TB) S3 {
	t.Helper()
	s3Once.Do(func() { s3Endpoint, s3Root, s3Err = startVersity() })
	if s3Err != nil {
		t.Fatalf("testenv: %v", s3Err)
	}
	name := fmt.Sprintf("formq-test-%d-%d", os.Getpid(), bucketN.Add(1))
	return S3{
		Endpoint: s3Endpoint, Region: S3Region,
		AccessKey: S3AccessKey, SecretKey: S3SecretKey,
		Bucket: name, Dir: filepath.Join(s3Root, name),
	}
}

func startVersity() (endpoint, dataDir string, err error) {
	bin, err := lookBinary("versitygw", "FORMQ_VERSITYGW", "run 'make test' (it installs it into ./bin) or 'go install github.com/versity/versitygw/cmd/versitygw@v1.8.0'")
	if err != nil {
		return "", "", err
	}
	root, err := tempRoot()
	if err != nil {
		return "", "", err
	}
	dataDir = filepath.Join(root, "s3")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", "", err
	}
	var lastErr error
	for range 3 {
		addr, err := FreePort()
		if err != nil {
			return "", "", err
		}
		logPath := filepath.Join(root, "versitygw-"+strings.ReplaceAll(addr, ":", "_")+".log")
		cmd, err := start(bin, []string{
			"--port", addr, "--access", S3AccessKey, "--secret", S3SecretKey,
			"--region", S3Region, "--keep-alive", "--quiet",
			"posix", dataDir,
		}, logPath)
		if err != nil {
			return "", "", fmt.Errorf("start versitygw: %w", err)
		}
		if lastErr = waitTCP(addr, 15*time.Second, logPath); lastErr == nil {
			fmt.Fprintf(os.Stderr, "testenv: started real versitygw %s (pid %d) on %s, posix backend in %s\n", version(bin), cmd.Process.Pid, addr, dataDir)
			return "http://" + addr, dataDir, nil
		}
		_ = cmd.Process.Kill()
	}
	return "", "", lastErr
}

// Context returns a context that ends with the test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// Client returns a go-redis client on the test's database, closed when
// the test ends.
func (r Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, DB: r.DB})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Build compiles the command pkg (a path like "./cmd/api", relative to the
// repository root, or to dir when dir is not empty) into a temporary
// directory of t and returns the binary's path. Flags go to `go build`.
func Build(t testing.TB, dir, pkg string, flags ...string) string {
	t.Helper()
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = root
	}
	name := filepath.Base(pkg)
	if name == "." {
		name = filepath.Base(dir)
	}
	bin := filepath.Join(t.TempDir(), name)
	args := append(append([]string{"build", "-o", bin}, flags...), pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}
