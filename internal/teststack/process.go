package teststack

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Process is a formq command (a built cmd/api or cmd/worker) running as a
// process of its own: its output goes to a log file, it is stopped with
// SIGTERM (SIGKILL after 15 s) when the test ends, and it is started once
// it has logged where it listens and answers /healthz there.
type Process struct {
	URL string // where it listens, from its "listening" line
	Log string // the file of its output

	cmd    *exec.Cmd
	exited chan struct{} // closed once it has ended
}

// StartProcess runs bin with env (and PATH and HOME) only; name names its
// log file and its messages.
func StartProcess(t *testing.T, bin, name string, env map[string]string) *Process {
	t.Helper()
	p := &Process{Log: filepath.Join(t.TempDir(), name+".log"), exited: make(chan struct{})}
	logf, err := os.Create(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(bin)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			p.Kill()
		}
	})
	deadline := time.After(60 * time.Second)
	for p.URL = p.listening(); p.URL == ""; p.URL = p.listening() {
		select {
		case <-p.exited:
			t.Fatalf("%s ended before it listened:\n%s", name, p.tail())
		case <-deadline:
			t.Fatalf("%s did not listen within 60s:\n%s", name, p.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
	WaitOK(t, p.URL+"/healthz")
	return p
}

// listening is the URL of the process's "listening" line, "" before it.
func (p *Process) listening() string {
	f, err := os.Open(p.Log)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20) // the start-up line holds the whole configuration
	for sc.Scan() {
		var line struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			return line.URL
		}
	}
	return ""
}

// Terminate ends the process with SIGTERM, as an orchestrator stopping it
// would, and waits for it.
func (p *Process) Terminate() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// tail is the end of the process's output, for a failure's message.
func (p *Process) tail() string {
	b, _ := os.ReadFile(p.Log)
	return string(b[max(0, len(b)-4000):])
}
