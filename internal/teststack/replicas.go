package teststack

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/uploads"
	"github.com/redis/go-redis/v9"
)

// ReplicaSecret is the FORMQ_SECRET every process of StartReplicas shares
// unless the test sets its own: tokens one API seals (status capabilities,
// upload references, bound arguments) must open on the other, as they do
// in a deployment whose replicas share their secret.
const ReplicaSecret = "replicas-test-secret-of-at-least-32-characters"

// Replicas is formq as the shipped deployments run it: two API and two
// worker processes, each a built cmd/api or cmd/worker running as a
// process of its own, on one Redis and one S3. Tests reach a given API
// with API(i), or spread their requests over both with NextAPI and
// Client, as a load balancer in front of the replicas would.
type Replicas struct {
	APIs    []*Process
	Workers []*Process
	Env     map[string]string // what every process was started with
	Redis   testenv.Redis
	S3      testenv.S3
	Store   *uploads.Store // the same bucket, for looking at what was stored
	RDB     *redis.Client  // the same Redis database

	next      atomic.Uint64
	workerBin string
}

// StartReplicas runs two APIs and two workers with extraEnv over the
// test defaults, on a Redis database and an S3 bucket of their own.
func StartReplicas(t *testing.T, extraEnv map[string]string) *Replicas {
	t.Helper()
	return StartReplicasOn(t, testenv.StartRedis(t), testenv.StartS3(t), 2, 2, extraEnv)
}

// StartReplicasOn runs apis API and workers worker processes on the given
// Redis and S3. Each API buffers resumable uploads in a temporary
// directory of its own (FORMQ_TUS_TEMP_DIR), as each pod has its own
// volume; the rest of the environment is the same for every process.
func StartReplicasOn(t *testing.T, r testenv.Redis, s testenv.S3, apis, workers int, extraEnv map[string]string) *Replicas {
	t.Helper()
	env := map[string]string{"FORMQ_SECRET": ReplicaSecret}
	for k, v := range extraEnv {
		env[k] = v
	}
	env = defaultEnv(t, r, s, env)
	apiBin, workerBin := testenv.Build(t, "", "./cmd/api"), testenv.Build(t, "", "./cmd/worker")
	rs := &Replicas{Env: env, Redis: r, S3: s, workerBin: workerBin}
	for i := range apis {
		penv := env
		if _, ok := extraEnv["FORMQ_TUS_TEMP_DIR"]; !ok {
			penv = with(env, "FORMQ_TUS_TEMP_DIR", t.TempDir())
		}
		rs.APIs = append(rs.APIs, StartProcess(t, apiBin, fmt.Sprintf("api%d", i+1), penv))
	}
	for range workers {
		rs.StartWorker(t)
	}
	rs.Store = newStore(t, s)
	rs.RDB = r.Client(t)
	return rs
}

// StartWorker starts one more worker process, as scaling the workers up
// or replacing one that was stopped would.
func (rs *Replicas) StartWorker(t *testing.T) *Process {
	t.Helper()
	p := StartProcess(t, rs.workerBin, fmt.Sprintf("worker%d", len(rs.Workers)+1), rs.Env)
	rs.Workers = append(rs.Workers, p)
	return p
}

// API is the URL of the i-th API process (from 0, modulo their number).
func (rs *Replicas) API(i int) string { return rs.APIs[i%len(rs.APIs)].URL }

// NextAPI is the URL of the API process whose turn it is: each call
// answers the next one, round robin.
func (rs *Replicas) NextAPI() string {
	return rs.API(int(rs.next.Add(1) - 1))
}

// Client is an HTTP client whose every request goes to the next API
// process in turn (NextAPI), whatever API's URL it names, and which
// follows no redirects: send it requests to API(0)'s URL and they are
// spread across the replicas.
func (rs *Replicas) Client() *http.Client {
	return &http.Client{
		Transport:     spread{rs: rs, base: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// spread sends each request to the next API process.
type spread struct {
	rs   *Replicas
	base http.RoundTripper
}

func (s spread) RoundTrip(req *http.Request) (*http.Response, error) {
	to, err := url.Parse(s.rs.NextAPI())
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = to.Scheme, to.Host, ""
	return s.base.RoundTrip(r)
}

// On is url (of any API process) moved to the i-th API process: the same
// path and query on its host.
func (rs *Replicas) On(i int, u string) string {
	for _, p := range rs.APIs {
		if rest, ok := strings.CutPrefix(u, p.URL); ok {
			return rs.API(i) + rest
		}
	}
	return u
}

// defaultEnv is the environment of a test's formq processes on r and s:
// development mode, port 0 for every listener, a bucket created at
// start, the demo's actions file, then extra over them.
func defaultEnv(t *testing.T, r testenv.Redis, s testenv.S3, extra map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{
		"FORMQ_ENV":              "development",
		"FORMQ_ADDR":             "127.0.0.1:0",
		"FORMQ_WORKER_ADDR":      "127.0.0.1:0",
		"FORMQ_REDIS_URL":        r.URL(),
		"FORMQ_S3_CREATE_BUCKET": "true",
		"FORMQ_ACTIONS":          ActionsFile(t),
	}
	for k, v := range s.Env() {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// with is a copy of env with k set to v.
func with(env map[string]string, k, v string) map[string]string {
	c := make(map[string]string, len(env)+1)
	for k, v := range env {
		c[k] = v
	}
	c[k] = v
	return c
}

// newStore opens the test's bucket, for looking at what was stored.
func newStore(t *testing.T, s testenv.S3) *uploads.Store {
	t.Helper()
	store, err := uploads.NewStore(context.Background(), uploads.Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return store
}
