package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/actions/submit"
	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
)

// Credentials the local provider APIs expect.
const (
	cfToken     = "cf-test-token-0123456789"
	cfZone      = "zone0123"
	fastlyKey   = "fastly-test-key-0123456789"
	fastlySvc   = "svc0123"
	siteURL     = "https://www.example.com"
	sinkActions = `actions:
  post:
    fields:
      title: {type: text, required: true}
    revalidate: {paths: [/posts, "/posts/{id}"], tags: [posts, "post:{id}"]}
`
)

// apiCall is one request a local provider API received with the
// documented shape.
type apiCall struct {
	Key    string // Idempotency-Key (webhook-id for Next.js routes)
	Purge  string // what it purges, e.g. tags=posts,post:ID
	Status int    // the answer; 0 when the client went away first
}

// localAPI is a provider's API on a local server. check returns what a
// well-formed request purges, or why it is not well formed. fail500
// answers 500 to that many first calls; hold keeps the first call open
// until released or until the client goes away.
type localAPI struct {
	check   func(r *http.Request, body []byte) (purge string, problem string)
	answer  func(w http.ResponseWriter, purge string)
	fail500 int

	hold     bool
	holding  chan struct{} // closed when the first call is held
	releaseC chan struct{}

	mu       sync.Mutex
	calls    []apiCall
	problems []string
}

func (a *localAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	purge, problem := a.check(r, body)
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		key = r.Header.Get("webhook-id")
	}
	a.mu.Lock()
	if problem != "" {
		a.problems = append(a.problems, problem)
		a.mu.Unlock()
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	n := len(a.calls)
	a.calls = append(a.calls, apiCall{Key: key, Purge: purge})
	a.mu.Unlock()
	status := http.StatusOK
	switch {
	case a.hold && n == 0:
		close(a.holding)
		select {
		case <-a.releaseC:
		case <-r.Context().Done():
			return // cut: the call stays recorded with status 0
		}
	case n < a.fail500:
		status = http.StatusInternalServerError
	}
	a.mu.Lock()
	a.calls[n].Status = status
	a.mu.Unlock()
	if status != http.StatusOK {
		http.Error(w, `{"success":false,"errors":[{"code":10000,"message":"internal error"}]}`, status)
		return
	}
	a.answer(w, purge)
}

func (a *localAPI) release() { close(a.releaseC) }

func (a *localAPI) snapshot() ([]apiCall, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls), slices.Clone(a.problems)
}

// applied are the purges the provider carried out, once per
// idempotency key, as a receiver honouring the key sees them.
func (a *localAPI) applied() map[string]string {
	calls, _ := a.snapshot()
	out := map[string]string{}
	for _, c := range calls {
		if c.Status == http.StatusOK {
			out[c.Key] = c.Purge
		}
	}
	return out
}

func newLocalAPI(t *testing.T, a *localAPI) *httptest.Server {
	t.Helper()
	a.holding, a.releaseC = make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		if a.hold {
			select {
			case <-a.releaseC:
			default:
				a.release()
			}
		}
		srv.Close()
		if _, problems := a.snapshot(); len(problems) > 0 {
			t.Errorf("requests not in the documented shape: %q", problems)
		}
	})
	return srv
}

// cloudflareAPI checks Cloudflare's documented purge_cache call: POST
// /client/v4/zones/{zone}/purge_cache, Authorization: Bearer, JSON with
// exactly one of tags or files (absolute URLs).
func cloudflareAPI() *localAPI {
	return &localAPI{
		check: func(r *http.Request, body []byte) (string, string) {
			if r.Method != http.MethodPost || r.URL.Path != "/client/v4/zones/"+cfZone+"/purge_cache" {
				return "", fmt.Sprintf("%s %s", r.Method, r.URL.Path)
			}
			if r.Header.Get("Authorization") != "Bearer "+cfToken {
				return "", "Authorization " + r.Header.Get("Authorization")
			}
			if r.Header.Get("Content-Type") != "application/json" {
				return "", "Content-Type " + r.Header.Get("Content-Type")
			}
			var req map[string][]string
			if err := json.Unmarshal(body, &req); err != nil || len(req) != 1 {
				return "", "body " + string(body)
			}
			for kind, list := range req {
				if (kind != "tags" && kind != "files") || len(list) == 0 || len(list) > 30 {
					return "", "body " + string(body)
				}
				for _, f := range list {
					if kind == "files" && !strings.HasPrefix(f, siteURL+"/") {
						return "", "file not absolute: " + f
					}
				}
				return kind + "=" + strings.Join(list, ","), ""
			}
			return "", "empty body"
		},
		answer: func(w http.ResponseWriter, _ string) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"success":true,"errors":[],"messages":[],"result":{"id":"`+cfZone+`"}}`)
		},
	}
}

// fastlyAPI checks Fastly's documented purges, with Fastly-Key and, for
// a soft purge, Fastly-Soft-Purge: 1: by surrogate keys, POST
// /service/{id}/purge with the keys in Surrogate-Key; and of one URL,
// POST /purge/{host}{path} for the site's host.
func fastlyAPI() *localAPI {
	return &localAPI{
		check: func(r *http.Request, body []byte) (string, string) {
			if r.Header.Get("Fastly-Key") != fastlyKey {
				return "", "Fastly-Key " + r.Header.Get("Fastly-Key")
			}
			soft := ""
			switch r.Header.Get("Fastly-Soft-Purge") {
			case "":
			case "1":
				soft = " soft"
			default:
				return "", "Fastly-Soft-Purge " + r.Header.Get("Fastly-Soft-Purge")
			}
			host := strings.TrimPrefix(siteURL, "https://")
			switch {
			case r.Method != http.MethodPost || len(body) != 0:
				return "", fmt.Sprintf("%s %s with %d bytes", r.Method, r.URL.Path, len(body))
			case r.URL.Path == "/service/"+fastlySvc+"/purge":
				keys := strings.Fields(r.Header.Get("Surrogate-Key"))
				if len(keys) == 0 || len(keys) > 256 {
					return "", "Surrogate-Key " + r.Header.Get("Surrogate-Key")
				}
				return "keys=" + strings.Join(keys, ",") + soft, ""
			case strings.HasPrefix(r.URL.Path, "/purge/"+host+"/"):
				if r.Header.Get("Surrogate-Key") != "" {
					return "", "Surrogate-Key on a URL purge"
				}
				return "url=" + strings.TrimPrefix(r.URL.Path, "/purge/") + soft, ""
			}
			return "", fmt.Sprintf("%s %s", r.Method, r.URL.Path)
		},
		answer: func(w http.ResponseWriter, purge string) {
			w.Header().Set("Content-Type", "application/json")
			if strings.HasPrefix(purge, "url=") {
				io.WriteString(w, `{"status":"ok","id":"108-1391560174-974124"}`)
				return
			}
			ids := map[string]string{}
			for _, k := range strings.Split(strings.Fields(strings.TrimPrefix(purge, "keys="))[0], ",") {
				ids[k] = "108-1391560174-974124"
			}
			json.NewEncoder(w).Encode(ids)
		},
	}
}

// nextRoute is a Next.js revalidation route: it verifies the Standard
// Webhooks signature and reads the paths and tags of the event.
func nextRoute() *localAPI {
	return &localAPI{
		check: func(r *http.Request, body []byte) (string, string) {
			if r.Method != http.MethodPost || r.URL.Path != "/api/revalidate" {
				return "", fmt.Sprintf("%s %s", r.Method, r.URL.Path)
			}
			if !checkSignature(r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body) {
				return "", "bad signature"
			}
			var ev submission.Event
			if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type != "revalidate" {
				return "", "body " + string(body)
			}
			return "paths=" + strings.Join(ev.Paths, ",") + " tags=" + strings.Join(ev.Tags, ",") + " event=" + ev.ID, ""
		},
		answer: func(w http.ResponseWriter, _ string) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"revalidated":true}`)
		},
	}
}

// sinkEnv is the environment of a stack with the given local APIs.
func sinkEnv(t *testing.T, cf, fastly *httptest.Server, next ...*httptest.Server) map[string]string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "actions.yaml")
	if err := os.WriteFile(path, []byte(sinkActions), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FORMQ_ACTIONS": path, "FORMQ_SITE_URL": siteURL, "FORMQ_WEBHOOK_ALLOW_PRIVATE": "true"}
	if cf != nil {
		env["FORMQ_CLOUDFLARE_API_URL"] = cf.URL + "/client/v4"
		env["FORMQ_CLOUDFLARE_API_TOKEN"] = cfToken
		env["FORMQ_CLOUDFLARE_ZONE_ID"] = cfZone
	}
	if fastly != nil {
		env["FORMQ_FASTLY_API_URL"] = fastly.URL
		env["FORMQ_FASTLY_API_KEY"] = fastlyKey
		env["FORMQ_FASTLY_SERVICE_ID"] = fastlySvc
	}
	var urls []string
	for _, n := range next {
		urls = append(urls, n.URL+"/api/revalidate")
	}
	if len(urls) > 0 {
		env["FORMQ_NEXT_REVALIDATE_URL"] = strings.Join(urls, ",")
		env["FORMQ_NEXT_REVALIDATE_SECRET"] = fleetSecret
	}
	return env
}

func submitPost(t *testing.T, apiURL, title string) string {
	t.Helper()
	body, ctype := teststack.MultipartBody(t, map[string]string{"title": title}, nil)
	resp, raw := teststack.Post(t, apiURL+"/actions/post", body, ctype, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, raw)
	}
	var ok submit.Accepted
	if err := json.Unmarshal(raw, &ok); err != nil {
		t.Fatal(err)
	}
	return ok.Submission.ID
}

// statusOf reads the status the workers wrote, all of it (the admin's
// view: errors included).
func statusOf(t *testing.T, status *jobs.StatusStore, id string) *submission.Status {
	t.Helper()
	st, err := status.Status(context.Background(), id)
	if err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	return st
}

func waitFinished(t *testing.T, status *jobs.StatusStore, id string, timeout time.Duration) *submission.Status {
	t.Helper()
	var st *submission.Status
	teststack.WaitFor(t, timeout, "submission "+id+" to finish", func() bool {
		st = statusOf(t, status, id)
		return st.Done()
	})
	return st
}

func stepsLine(st *submission.Status) string {
	var parts []string
	for _, s := range st.Steps {
		parts = append(parts, fmt.Sprintf("%s:%s:%d", s.Type, s.State, s.Attempts))
	}
	return strings.Join(parts, " ")
}

// TestSinksPurgeOncePerEventOnLocalServers: Cloudflare, Fastly and two
// Next.js instances, each a local server checking the documented request
// and credentials, get exactly one purge per event.
func TestSinksPurgeOncePerEventOnLocalServers(t *testing.T) {
	cf, fastly, next1, next2 := cloudflareAPI(), fastlyAPI(), nextRoute(), nextRoute()
	cfSrv, fastlySrv := newLocalAPI(t, cf), newLocalAPI(t, fastly)
	n1, n2 := newLocalAPI(t, next1), newLocalAPI(t, next2)
	st := teststack.Start(t, sinkEnv(t, cfSrv, fastlySrv, n1, n2))
	status := jobs.NewStatusStore(st.RDB)

	for round, title := range []string{"first", "second"} {
		id := submitPost(t, st.APIURL, title)
		s := waitFinished(t, status, id, 30*time.Second)
		if s.Status != submission.StatusCompleted || s.Event == "" {
			t.Fatalf("submission %s: %s %q, steps %s", id, s.Status, s.Error, stepsLine(s))
		}
		if got, want := stepsLine(s), "cloudflare:completed:1 fastly:completed:1 next:completed:1 next:completed:1"; got != want {
			t.Errorf("steps %s, want %s", got, want)
		}
		key := "evt_" + id
		wantCF := map[string]string{
			key + ".tags.0":  "tags=posts,post:" + id,
			key + ".files.0": "files=" + siteURL + "/posts," + siteURL + "/posts/" + id,
		}
		wantNext := "paths=/posts,/posts/" + id + " tags=posts,post:" + id + " event=" + s.Event
		for name, c := range map[string]struct {
			api  *localAPI
			want map[string]string
		}{
			"cloudflare": {cf, wantCF},
			"fastly": {fastly, map[string]string{
				key + ".keys.0": "keys=posts,post:" + id,
				key + ".urls.0": "url=www.example.com/posts",
				key + ".urls.1": "url=www.example.com/posts/" + id,
			}},
			"next 1": {next1, map[string]string{key: wantNext}},
			"next 2": {next2, map[string]string{key: wantNext}},
		} {
			calls, _ := c.api.snapshot()
			if len(calls) != len(c.want)*(round+1) {
				t.Errorf("%s received %d calls after %d events, want %d", name, len(calls), round+1, len(c.want)*(round+1))
			}
			applied := c.api.applied()
			for k, v := range c.want {
				if applied[k] != v {
					t.Errorf("%s purge %s = %q, want %q", name, k, applied[k], v)
				}
			}
		}
	}
}

// TestCloudflareSinkRetriesAfter500LocalServer: a 500 from the local
// Cloudflare API is retried with backoff, under the same idempotency key,
// and the purge is carried out once.
func TestCloudflareSinkRetriesAfter500LocalServer(t *testing.T) {
	cf := cloudflareAPI()
	cf.fail500 = 1
	st := teststack.Start(t, sinkEnv(t, newLocalAPI(t, cf), nil))
	status := jobs.NewStatusStore(st.RDB)
	id := submitPost(t, st.APIURL, "retried")
	s := waitFinished(t, status, id, 30*time.Second)
	if s.Status != submission.StatusCompleted || stepsLine(s) != "cloudflare:completed:2" {
		t.Fatalf("submission %s %q, steps %s; want completed after 2 attempts", s.Status, s.Error, stepsLine(s))
	}
	calls, _ := cf.snapshot()
	key := "evt_" + id + ".tags.0"
	if len(calls) != 3 || calls[0].Status != 500 || calls[0].Key != key || calls[1].Key != key || calls[1].Status != 200 {
		t.Errorf("calls %+v: want the tags purge answered 500, then again with key %s, then the files purge", calls, key)
	}
	if applied := cf.applied(); len(applied) != 2 {
		t.Errorf("applied purges %v, want one of tags and one of files", applied)
	}
}

// TestFailingSinkDoesNotBlockOthersLocalAPI: the local Cloudflare API
// refuses the token; that sink fails for good, visible in the status and
// the metrics, while a slow Fastly purge and a Next.js route are each
// delivered on their own.
func TestFailingSinkDoesNotBlockOthersLocalAPI(t *testing.T) {
	cf := &localAPI{
		check: func(*http.Request, []byte) (string, string) { return "any", "" },
		answer: func(w http.ResponseWriter, _ string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}`)
		},
	}
	fastly, next := fastlyAPI(), nextRoute()
	fastly.hold = true
	st := teststack.Start(t, sinkEnv(t, newLocalAPI(t, cf), newLocalAPI(t, fastly), newLocalAPI(t, next)))
	status := jobs.NewStatusStore(st.RDB)
	id := submitPost(t, st.APIURL, "blocked?")

	// While Fastly holds its purge, Cloudflare has failed and the Next.js
	// route has been told.
	<-fastly.holding
	teststack.WaitFor(t, 30*time.Second, "the other sinks to finish while fastly is held", func() bool {
		return stepsLine(statusOf(t, status, id)) == "cloudflare:failed:1 fastly:running:1 next:completed:1"
	})
	fastly.release()
	s := waitFinished(t, status, id, 30*time.Second)
	if s.Status != submission.StatusFailed || stepsLine(s) != "cloudflare:failed:1 fastly:completed:1 next:completed:1" {
		t.Fatalf("submission %s, steps %s", s.Status, stepsLine(s))
	}
	if !strings.HasPrefix(s.Error, "step 1 (cloudflare) failed: cloudflare purge answered 403") || !strings.Contains(s.Error, "Authentication error") ||
		!strings.Contains(s.Steps[0].LastError, "403") || s.Event == "" {
		t.Errorf("error %q, step error %q, event %q", s.Error, s.Steps[0].LastError, s.Event)
	}
	resp, err := http.Get(st.WorkerURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`formq_steps_total{outcome="fail",step="cloudflare"} 1`,
		`formq_steps_total{outcome="ok",step="fastly"} 1`,
		`formq_steps_total{outcome="ok",step="next"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSinkPurgesOnceAcrossWorkerSIGKILLLocalAPI: a real worker process is
// SIGKILLed while the local Cloudflare API holds its purge; the next
// worker sends it again with the same idempotency key, so the API
// carries it out once, and the finished Fastly purge is not sent again.
func TestSinkPurgesOnceAcrossWorkerSIGKILLLocalAPI(t *testing.T) {
	bin := buildWorker(t)
	r := testenv.StartRedis(t)
	s3 := testenv.StartS3(t)
	cf, fastly := cloudflareAPI(), fastlyAPI()
	cf.hold = true
	env := sinkEnv(t, newLocalAPI(t, cf), newLocalAPI(t, fastly))
	for k, v := range map[string]string{
		"FORMQ_ENV": "development", "FORMQ_ADDR": "127.0.0.1:0", "FORMQ_WORKER_ADDR": "127.0.0.1:0",
		"FORMQ_REDIS_URL": r.URL(), "FORMQ_S3_CREATE_BUCKET": "true", "FORMQ_SHUTDOWN_TIMEOUT": "5s",
	} {
		env[k] = v
	}
	for k, v := range s3.Env() {
		env[k] = v
	}
	apiURL := teststack.StartRun(t, "api", api.Main, env)
	status := jobs.NewStatusStore(r.Client(t))
	w1 := startWorker(t, bin, "worker1", env)
	id := submitPost(t, apiURL, "killed")

	<-cf.holding
	teststack.WaitFor(t, 30*time.Second, "fastly to be done while cloudflare is held", func() bool {
		return stepsLine(statusOf(t, status, id)) == "cloudflare:running:1 fastly:completed:1"
	})
	w1.Kill()
	startWorker(t, bin, "worker2", env)

	s := waitFinished(t, status, id, 120*time.Second)
	if s.Status != submission.StatusCompleted || stepsLine(s) != "cloudflare:completed:2 fastly:completed:1" {
		t.Fatalf("submission %s %q, steps %s", s.Status, s.Error, stepsLine(s))
	}
	calls, _ := cf.snapshot()
	key := "evt_" + id
	if len(calls) != 3 || calls[0].Key != key+".tags.0" || calls[0].Status != 0 ||
		calls[1].Key != key+".tags.0" || calls[1].Status != 200 || calls[2].Key != key+".files.0" {
		t.Errorf("cloudflare calls %+v: want the tags purge cut by the kill, sent again with the same key, then the files purge", calls)
	}
	if applied := cf.applied(); len(applied) != 2 || applied[key+".tags.0"] != "tags=posts,post:"+id {
		t.Errorf("cloudflare carried out %v, want one tags and one files purge", applied)
	}
	if calls, _ := fastly.snapshot(); len(calls) != 3 {
		t.Errorf("fastly received %d purges, want 3, its keys and two URLs once (its step had finished before the kill)", len(calls))
	}
	t.Logf("cloudflare calls: %+v", calls)
}

// TestFastlySoftPurgeByURLLocalAPI: with FORMQ_FASTLY_SOFT_PURGE the local
// Fastly API gets the event's surrogate keys and each of its paths, made
// absolute with FORMQ_SITE_URL, as soft purges, each request under its
// own idempotency key.
func TestFastlySoftPurgeByURLLocalAPI(t *testing.T) {
	fastly := fastlyAPI()
	env := sinkEnv(t, nil, newLocalAPI(t, fastly))
	env["FORMQ_FASTLY_SOFT_PURGE"] = "true"
	st := teststack.Start(t, env)
	status := jobs.NewStatusStore(st.RDB)
	id := submitPost(t, st.APIURL, "soft")
	s := waitFinished(t, status, id, 30*time.Second)
	if s.Status != submission.StatusCompleted || stepsLine(s) != "fastly:completed:1" {
		t.Fatalf("submission %s %q, steps %s", s.Status, s.Error, stepsLine(s))
	}
	calls, _ := fastly.snapshot()
	key := "evt_" + id
	want := []apiCall{
		{Key: key + ".keys.0", Purge: "keys=posts,post:" + id + " soft", Status: 200},
		{Key: key + ".urls.0", Purge: "url=www.example.com/posts soft", Status: 200},
		{Key: key + ".urls.1", Purge: "url=www.example.com/posts/" + id + " soft", Status: 200},
	}
	if !slices.Equal(calls, want) {
		t.Errorf("fastly calls\n%+v\nwant\n%+v", calls, want)
	}
}

// TestCloudflareSuccessFalseIsFinalLocalAPI: the local Cloudflare API
// answers 200 with "success": false (as Cloudflare does for a purge it
// will not carry out); the sink fails at once, not retried, with
// Cloudflare's message in the step's status.
func TestCloudflareSuccessFalseIsFinalLocalAPI(t *testing.T) {
	cf := cloudflareAPI()
	cf.answer = func(w http.ResponseWriter, _ string) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"success":false,"errors":[{"code":1012,"message":"Request must contain one of \"purge_everything\", \"files\", \"tags\", \"hosts\" or \"prefixes\""}],"messages":[],"result":null}`)
	}
	st := teststack.Start(t, sinkEnv(t, newLocalAPI(t, cf), nil))
	status := jobs.NewStatusStore(st.RDB)
	id := submitPost(t, st.APIURL, "refused")
	s := waitFinished(t, status, id, 30*time.Second)
	if s.Status != submission.StatusFailed || stepsLine(s) != "cloudflare:failed:1" {
		t.Fatalf("submission %s %q, steps %s; want failed after one attempt", s.Status, s.Error, stepsLine(s))
	}
	const msg = "cloudflare refused the purge: 1012 Request must contain one of"
	if !strings.Contains(s.Steps[0].LastError, msg) || !strings.HasPrefix(s.Error, "step 1 (cloudflare) failed: "+msg) {
		t.Errorf("step error %q, submission error %q; want %q", s.Steps[0].LastError, s.Error, msg)
	}
	if calls, _ := cf.snapshot(); len(calls) != 1 || calls[0].Key != "evt_"+id+".tags.0" {
		t.Errorf("cloudflare calls %+v, want the tags purge once", calls)
	}
}
