package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// Terminate ends the server with SIGTERM, as an orderly shutdown would,
// and waits for it (SIGKILL after 30 s).
func (s *Server) Terminate(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if s.paused {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		s.paused = false
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
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
	s.setPaused(t, true)
}

// Resume lets a paused server go on.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.setPaused(t, false)
}

// setPaused sends SIGSTOP or SIGCONT to a running server not already in
// that state.
func (s *Server) setPaused(t testing.TB, pause bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	verb, sig := "resume", syscall.SIGCONT
	if pause {
		verb, sig = "pause", syscall.SIGSTOP
	}
	if s.cmd == nil || s.paused == pause {
		t.Fatalf("testenv: cannot %s %s: running %t, paused %t", verb, s.name, s.cmd != nil, s.paused)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("testenv: %s %s: %v", verb, s.name, err)
	}
	s.paused = pause
	if pause {
		// The signal is delivered asynchronously: a thread already
		// running may still answer a request. Return once it is stopped.
		waitStopped(s.cmd.Process.Pid)
	}
}

// waitStopped waits, for a few seconds at most, until every thread of pid
// is stopped (state T in /proc).
func waitStopped(pid int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		stopped := len(tasks) > 0
		for _, task := range tasks {
			b, err := os.ReadFile(task)
			// The state follows the command name in parentheses.
			if i := strings.LastIndexByte(string(b), ')'); err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
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
func StartPrivateRedis(t testing.TB, extraArgs ...string) (Redis, *Server) {
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
	s.args = append(s.args, extraArgs...)
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
	return StartPrivateS3In(t, filepath.Join(t.TempDir(), "s3"))
}

// StartPrivateS3In is StartPrivateS3 with the server's data in the
// directory data (created if missing), for a test that puts it on a
// filesystem of its own, such as a small one that fills up.
func StartPrivateS3In(t testing.TB, data string) (S3, *Server) {
	t.Helper()
	bin, err := lookBinary("versitygw", "FORMQ_VERSITYGW", "run 'make test' (it installs it into ./bin)")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
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

// Sentinel is a primary, one replica and one sentinel watching them, each
// a process of the test's own, for failover tests.
type Sentinel struct {
	Name     string // the primary's name the sentinel knows
	Addr     string // the sentinel's address
	Primary  *Server
	Replica  *Server
	sentinel *Server
}

// URL is the FORMQ_REDIS_URL that finds the primary through the sentinel.
func (s *Sentinel) URL() string { return "redis+sentinel://" + s.Addr + "/" + s.Name + "/0" }

// StartReplicated starts a primary and one replica of it, each a process
// of the test's own, and returns once the replica has synced.
func StartReplicated(t testing.TB) (r Redis, primary, replica *Server) {
	t.Helper()
	r, primary = StartPrivateRedis(t)
	host, port, _ := net.SplitHostPort(primary.Addr)
	_, replica = StartPrivateRedis(t, "--replicaof", host, port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := redisReply(replica.Addr, "INFO replication")
		if err == nil && strings.Contains(out, "master_link_status:up") {
			return r, primary, replica
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(replica.logPath)
			t.Fatalf("testenv: the replica %s never synced with %s; its log:\n%s", replica.Addr, primary.Addr, tail(string(log), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StartSentinel starts a primary, a replica of it and a sentinel that
// fails over within about two seconds of the primary going away.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	_, primary, replica := StartReplicated(t)
	host, port, _ := net.SplitHostPort(primary.Addr)
	bin, err := lookBinary("redis-server", "FORMQ_REDIS_SERVER", "apt-get install redis-server redis-sentinel")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
	addr, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	shost, sport, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("bind %s\nport %s\ndir %s\nsentinel monitor formq %s %s 1\n"+
		"sentinel down-after-milliseconds formq 1000\nsentinel failover-timeout formq 5000\n", shost, sport, dir, host, port)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: addr, name: "redis-sentinel", bin: bin, logPath: filepath.Join(dir, "sentinel.log"), args: []string{conf, "--sentinel"}}
	startPrivate(t, s)
	// Wait until the sentinel has found the replica.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := redisReply(addr, "SENTINEL replicas formq"); err == nil && strings.Contains(out, replica.Addr[strings.LastIndex(replica.Addr, ":")+1:]) {
			return &Sentinel{Name: "formq", Addr: addr, Primary: primary, Replica: replica, sentinel: s}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("testenv: the sentinel on %s never saw the replica %s", addr, replica.Addr)
	return nil
}

// redisReply sends one inline command and returns the raw reply read
// within a short time.
func redisReply(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
		return "", err
	}
	buf := make([]byte, 64<<10)
	n, _ := c.Read(buf)
	time.Sleep(50 * time.Millisecond)
	m, _ := c.Read(buf[n:])
	return string(buf[:n+m]), nil
}

// WaitSettled waits, up to timeout, until the server has finished with
// every request it took in: none of its connections has unread bytes or
// a closed client it has not answered (TCP CLOSE_WAIT). A request whose
// client gave up while the server hung may still be carried out once it
// runs again; after WaitSettled it has been.
func (s *Server) WaitSettled(t testing.TB, timeout time.Duration) {
	t.Helper()
	_, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf(":%04X", p)
	deadline := time.Now().Add(timeout)
	for {
		busy := 0
		raw, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			// sl local rem st tx_queue:rx_queue ...
			f := strings.Fields(line)
			if len(f) < 5 || !strings.HasSuffix(f[1], local) || f[3] == "0A" { // 0A: LISTEN
				continue
			}
			_, rx, _ := strings.Cut(f[4], ":")
			if f[3] == "08" || strings.Trim(rx, "0") != "" { // 08: CLOSE_WAIT
				busy++
			}
		}
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still has %d connections with requests it has not finished after %s", s.name, busy, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
