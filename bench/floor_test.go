package bench

// The floor of the small-form rows: the bench binary itself, run again as
// a plain net/http server that parses the same form and answers 202 with
// a body as large as formq's, without Redis. Its CPU per request is what
// serving HTTP costs on this machine before formq does anything.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
)

// floorEnv names the address the re-run binary serves on, floorAnswerEnv
// the body it answers: one of formq's own answers to the bench form.
const (
	floorEnv       = "FORMQ_BENCH_FLOOR_ADDR"
	floorAnswerEnv = "FORMQ_BENCH_FLOOR_ANSWER"
)

// serveFloor runs the floor server when the binary was started as one; it
// does not return then.
func serveFloor() {
	addr := os.Getenv(floorEnv)
	if addr == "" {
		return
	}
	answer := []byte(os.Getenv(floorAnswerEnv))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("name") == "" || !strings.Contains(r.PostForm.Get("email"), "@") {
			http.Error(w, "bad form", http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(answer)
	}))
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// startFloor runs the floor server as its own process, answering answer.
func startFloor(b *testing.B, answer string) *apiProcess {
	b.Helper()
	addr, err := testenv.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), floorEnv+"="+addr, floorAnswerEnv+"="+answer)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &apiProcess{url: "http://" + addr, pid: cmd.Process.Pid}
	p.stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	b.Cleanup(p.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			b.Fatal("the floor server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
