package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a server process of one test's own, which the test may kill,
// pause and start again on the same address and data directory, to see
// how formq behaves while a dependency is gone or hangs.
type Server struct {
	Addr    string
	name    string
	bin     string
	args    []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has ended
	paused bool
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	if s.paused {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		s.paused = false
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Pause stops the server with SIGSTOP: connections open but nothing
// answers, as with a hung host.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.paused {
		t.Fatalf("testenv: %s is not running", s.name)
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("testenv: pause %s: %v", s.name, err)
	}
	s.paused = true
}

// Resume lets a paused server go on.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || !s.paused {
		t.Fatalf("testenv: %s is not paused", s.name)
	}
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("testenv: resume %s: %v", s.name, err)
	}
	s.paused = false
}

// Start starts the server again on its address with its data, after Kill.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		t.Fatalf("testenv: %s is already running", s.name)
	}
	if err := s.startLocked(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

func (s *Server) startLocked() error {
	// The port was ours a moment ago; a restart may race the kernel's
	// release of it, so try for a little while.
	var err error
	for range 50 {
		logf, ferr := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if ferr != nil {
			return ferr
		}
		cmd := exec.Command(s.bin, s.args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			return fmt.Errorf("start %s: %w", s.name, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if err = waitTCPOrExit(s.Addr, 10*time.Second, exited); err == nil {
			s.cmd = cmd
			s.exited = exited
			return nil
		}
		_ = cmd.Process.Kill()
		<-exited
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(s.logPath)
	return fmt.Errorf("%s on %s did not start: %v; its log:\n%s", s.name, s.Addr, err, tail(string(out), 2000))
}

func waitTCPOrExit(addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("exited")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not reachable after %s", timeout)
}

// StartPrivateRedis starts a redis-server of the test's own (appendonly,
// so a restart keeps what was written) and stops it when the test ends.
func StartPrivateRedis(t testing.TB) (Redis, *Server) {
	t.Helper()
	bin, err := lookBinary("redis-server", "FORMQ_REDIS_SERVER", "run 'make test' (it installs it) or 'apt-get install redis-server'")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
	addr, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	s := &Server{Addr: addr, name: "redis-server", bin: bin, logPath: filepath.Join(dir, "redis.log"), args: []string{
		"--bind", host, "--port", port, "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
		"--maxmemory-policy", "noeviction", "--daemonize", "no", "--protected-mode", "yes",
	}}
	startPrivate(t, s)
	if err := waitRedis(addr, 10*time.Second); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return Redis{Addr: addr, DB: 0}, s
}

// StartPrivateS3 starts a versitygw of the test's own with one bucket,
// named like StartS3's, not created yet; it stops when the test ends.
func StartPrivateS3(t testing.TB) (S3, *Server) {
	t.Helper()
	bin, err := lookBinary("versitygw", "FORMQ_VERSITYGW", "run 'make test' (it installs it into ./bin)")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "s3")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	addr, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: addr, name: "versitygw", bin: bin, logPath: filepath.Join(dir, "versitygw.log"), args: []string{
		"--port", addr, "--access", S3AccessKey, "--secret", S3SecretKey,
		"--region", S3Region, "--keep-alive", "--quiet", "posix", data,
	}}
	startPrivate(t, s)
	name := "formq-private-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(bucketN.Add(1), 10)
	return S3{
		Endpoint: "http://" + addr, Region: S3Region, AccessKey: S3AccessKey, SecretKey: S3SecretKey,
		Bucket: name, Dir: filepath.Join(data, name),
	}, s
}

func startPrivate(t testing.TB, s *Server) {
	t.Helper()
	s.mu.Lock()
	err := s.startLocked()
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stopLocked()
	})
}
