package formq_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq/internal/reload"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

// The versions of the actions file the reload tests serve.
const (
	reloadV1 = `actions:
  contact:
    fields:
      name: {type: text, required: true}
    message: Thanks from version 1
`
	// v2 adds an action, and a required field and a new message to contact.
	reloadV2 = `actions:
  contact:
    fields:
      name: {type: text, required: true}
      phone: {type: text, required: true}
    message: Thanks from version 2
  newsletter:
    fields:
      email: {type: email, required: true}
`
	// broken names a step type nothing provides.
	reloadBroken = `actions:
  contact:
    fields:
      name: {type: text, required: true}
    steps:
      - fax: {to: "+15550100"}
`
)

// reloadStack is an API and a worker process serving one actions file.
type reloadStack struct {
	file        string
	api, worker *teststack.Process
}

// startReloadStack starts the built binaries on the file holding v1,
// looking at it every watch (0: only on SIGHUP).
func startReloadStack(t *testing.T, apiBin, workerBin string, r testenv.Redis, s3 testenv.S3, watch string) *reloadStack {
	t.Helper()
	st := &reloadStack{file: filepath.Join(t.TempDir(), "actions.yaml")}
	st.write(t, reloadV1)
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_ADDR": "127.0.0.1:0", "FORMQ_WORKER_ADDR": "127.0.0.1:0",
		"FORMQ_REDIS_URL": r.URL(), "FORMQ_S3_CREATE_BUCKET": "true", "FORMQ_ACTIONS": st.file,
		"FORMQ_ACTIONS_WATCH": watch, "FORMQ_SHUTDOWN_TIMEOUT": "5s",
	}
	maps.Copy(env, s3.Env())
	st.api = teststack.StartProcess(t, apiBin, "api", env)
	st.worker = teststack.StartProcess(t, workerBin, "worker", env)
	return st
}

func (st *reloadStack) write(t *testing.T, body string) {
	t.Helper()
	// Written aside and renamed, as editors and deployments replace files.
	tmp := st.file + ".new"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, st.file); err != nil {
		t.Fatal(err)
	}
}

// hup sends SIGHUP to both processes.
func (st *reloadStack) hup(t *testing.T) {
	t.Helper()
	for _, p := range []*teststack.Process{st.api, st.worker} {
		if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
}

// readyVersion is the actions version /readyz of base shows.
func readyVersion(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		OK      bool
		Actions struct{ Version, LoadedAt string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	return ready.Actions.Version
}

// metricLine is the value of one series (name with its labels) on the
// /metrics of base, "" when absent.
func metricLine(t *testing.T, base, series string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v
		}
	}
	return ""
}

func statusOf(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitVersion waits until both processes serve version.
func (st *reloadStack) waitVersion(t *testing.T, version string) {
	t.Helper()
	for _, p := range []*teststack.Process{st.api, st.worker} {
		teststack.WaitFor(t, 10*time.Second, "version "+version+" at "+p.URL, func() bool { return readyVersion(t, p.URL) == version })
	}
}

// TestReloadActionsFile runs the api and worker binaries and changes
// their actions file under them: SIGHUP and a change of the file load
// the new version (its routes, /readyz and the version metric), a file
// that does not load leaves the version in service and is logged with
// its problem, and a request under way when the file is reloaded is
// answered by the version it began with.
func TestReloadActionsFile(t *testing.T) {
	apiBin := testenv.Build(t, "", "./cmd/api")
	workerBin := testenv.Build(t, "", "./cmd/worker")
	r := testenv.StartRedis(t)
	s3 := testenv.StartS3(t)
	v1, v2 := reload.Digest([]byte(reloadV1)), reload.Digest([]byte(reloadV2))

	t.Run("SIGHUP loads the changed file", func(t *testing.T) {
		st := startReloadStack(t, apiBin, workerBin, r, s3, "0")
		st.waitVersion(t, v1)
		if got := statusOf(t, st.api.URL+"/forms/newsletter"); got != http.StatusNotFound {
			t.Fatalf("newsletter before the reload: %d, want 404", got)
		}
		st.write(t, reloadV2)
		time.Sleep(300 * time.Millisecond)
		if got := readyVersion(t, st.api.URL); got != v1 {
			t.Fatalf("without a signal and with FORMQ_ACTIONS_WATCH=0 the API serves %s, want still %s", got, v1)
		}
		st.hup(t)
		st.waitVersion(t, v2)
		if got := statusOf(t, st.api.URL+"/forms/newsletter"); got != http.StatusOK {
			t.Fatalf("newsletter after SIGHUP: %d, want 200", got)
		}
		for _, p := range []*teststack.Process{st.api, st.worker} {
			if got := metricLine(t, p.URL, `formq_actions_version_info{version="`+v2+`"}`); got != "1" {
				t.Errorf("%s: formq_actions_version_info of %s = %q, want 1", p.URL, v2, got)
			}
			if got := metricLine(t, p.URL, `formq_actions_version_info{version="`+v1+`"}`); got != "" {
				t.Errorf("%s: the old version %s is still in formq_actions_version_info (%s)", p.URL, v1, got)
			}
			if got := metricLine(t, p.URL, `formq_actions_reloads_total{result="ok"}`); got != "1" {
				t.Errorf("%s: formq_actions_reloads_total{result=ok} = %q, want 1", p.URL, got)
			}
		}
	})

	t.Run("a file that does not load keeps the version in service", func(t *testing.T) {
		st := startReloadStack(t, apiBin, workerBin, r, s3, "0")
		st.write(t, reloadBroken)
		st.hup(t)
		for _, p := range []*teststack.Process{st.api, st.worker} {
			teststack.WaitFor(t, 10*time.Second, "a failed reload at "+p.URL, func() bool {
				return metricLine(t, p.URL, `formq_actions_reloads_total{result="failed"}`) == "1"
			})
			if got := readyVersion(t, p.URL); got != v1 {
				t.Errorf("%s serves %s after a bad file, want still %s", p.URL, got, v1)
			}
			log, err := os.ReadFile(p.Log)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(log), "actions file not reloaded") || !strings.Contains(string(log), `step \"fax\": unknown step type`) {
				t.Errorf("%s: the log does not say the file was refused and why:\n%s", p.Log, log)
			}
		}
		if got := statusOf(t, st.api.URL+"/forms/contact"); got != http.StatusOK {
			t.Errorf("contact after a refused reload: %d, want 200", got)
		}
		resp, body := teststack.Post(t, st.api.URL+"/actions/contact", strings.NewReader("name=Ada"), "application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), "Thanks from version 1") {
			t.Errorf("a post after a refused reload: %d %s, want 202 from version 1", resp.StatusCode, body)
		}
	})

	t.Run("a change of the file is loaded without a signal", func(t *testing.T) {
		st := startReloadStack(t, apiBin, workerBin, r, s3, "100ms")
		st.write(t, reloadV2)
		st.waitVersion(t, v2)
		if got := statusOf(t, st.api.URL+"/forms/newsletter"); got != http.StatusOK {
			t.Fatalf("newsletter after the change: %d, want 200", got)
		}
	})

	t.Run("a request under way finishes on the version it began with", func(t *testing.T) {
		st := startReloadStack(t, apiBin, workerBin, r, s3, "0")
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		req, err := http.NewRequest(http.MethodPost, st.api.URL+"/actions/contact", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Accept", "application/json")
		answered := make(chan string, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answered <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answered <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
		// The request has begun: its first field is on the wire.
		if err := mw.WriteField("name", "Ada"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		st.write(t, reloadV2)
		st.hup(t)
		st.waitVersion(t, v2)
		// Version 2 requires phone; the post under way was begun on
		// version 1 and does not send it.
		if err := mw.Close(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		if got := <-answered; !strings.HasPrefix(got, "202 ") || !strings.Contains(got, "Thanks from version 1") {
			t.Errorf("the post under way was answered %s, want 202 with version 1's message", got)
		}
		resp, body := teststack.Post(t, st.api.URL+"/actions/contact", strings.NewReader("name=Ada"), "application/x-www-form-urlencoded", map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "phone") {
			t.Errorf("a post begun after the reload: %d %s, want 422 naming phone (version 2)", resp.StatusCode, body)
		}
	})
}
