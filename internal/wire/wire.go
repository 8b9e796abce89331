// Package wire holds the plumbing the API and the worker share when they
// are built from a formq.Config: clients of Redis and S3 checked at
// start, the logger, a metrics registry, listening and serving with a
// graceful shutdown, and the readiness answer.
package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/internal/buildinfo"
	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/uploads"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
)

// Logger is the process's JSON logger, tagged with the process name.
func Logger(w io.Writer, cfg formq.Config, process string) *slog.Logger {
	return telemetry.NewLogger(w, cfg.SlogLevel(), process)
}

// Redis connects to FORMQ_REDIS_URL and checks that it answers. A
// redis+sentinel:// URL gives a client that asks the sentinels for the
// current primary and follows failovers; asynq and formq's own keys share
// it.
func Redis(ctx context.Context, cfg formq.Config) (*redis.Client, error) {
	var rdb *redis.Client
	var where string
	if fo, err := SentinelOptions(cfg.RedisURL); err != nil {
		return nil, fmt.Errorf("%w: FORMQ_REDIS_URL: %v", formq.ErrInvalid, err)
	} else if fo != nil {
		rdb = redis.NewFailoverClient(fo)
		where = fmt.Sprintf("primary %q of sentinels %s", fo.MasterName, strings.Join(fo.SentinelAddrs, ","))
	} else {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("%w: FORMQ_REDIS_URL: %v", formq.ErrInvalid, err)
		}
		rdb = redis.NewClient(opt)
		where = opt.Addr
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis at %s is not reachable: %w", where, err)
	}
	return rdb, nil
}

// SentinelOptions reads a redis+sentinel://[:password@]host:port[,host:port...]/primary[/db]
// URL (the password is the primary's; sentinels without one). It returns
// nil for any other URL.
func SentinelOptions(raw string) (*redis.FailoverOptions, error) {
	rest, ok := strings.CutPrefix(raw, "redis+sentinel://")
	if !ok {
		return nil, nil
	}
	var password string
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo := rest[:at]
		rest = rest[at+1:]
		if _, pw, ok := strings.Cut(userinfo, ":"); ok {
			password = pw
		}
	}
	hosts, path, _ := strings.Cut(rest, "/")
	name, dbText, _ := strings.Cut(path, "/")
	if hosts == "" || name == "" {
		return nil, errors.New("want redis+sentinel://host:port[,host:port...]/primary-name[/db]")
	}
	db := 0
	if dbText != "" {
		n, err := strconv.Atoi(dbText)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("database %q is not a number", dbText)
		}
		db = n
	}
	return &redis.FailoverOptions{MasterName: name, SentinelAddrs: strings.Split(hosts, ","), Password: password, DB: db}, nil
}

// Store opens the S3 bucket, creating it when FORMQ_S3_CREATE_BUCKET is
// set, and checks that it answers.
func Store(ctx context.Context, cfg formq.Config) (*uploads.Store, error) {
	store, err := uploads.NewStore(ctx, uploads.Config{
		Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, Bucket: cfg.S3Bucket,
		AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, PublicEndpoint: cfg.S3PublicEndpoint,
		PartSize: int64(cfg.UploadPartSize), Memory: int64(cfg.UploadMemory), StallTimeout: cfg.S3StallTimeout,
		Admission: uploads.Admission{
			BufferWait: cfg.UploadBufferWait, ClientBuffers: cfg.UploadClientBuffers,
			MinRate: int64(cfg.UploadMinRate), RatePeriod: cfg.UploadRatePeriod,
		},
	})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if cfg.S3CreateBucket {
		if err := store.EnsureBucket(sctx); err != nil {
			return nil, err
		}
	}
	if err := store.Ping(sctx); err != nil {
		return nil, fmt.Errorf("S3 bucket %q is not reachable (FORMQ_S3_BUCKET, FORMQ_S3_ENDPOINT): %w", cfg.S3Bucket, err)
	}
	return store, nil
}

// Listen opens addr with a clear message when the port is taken; setting
// names the variable that chose the address.
func Listen(addr, setting string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w; is another process using the port?", addr, setting, err)
	}
	return l, nil
}

// Serve runs srv on l until ctx ends, then shuts it down within timeout.
func Serve(ctx context.Context, srv *http.Server, l net.Listener, timeout time.Duration, log *slog.Logger) error {
	// Requests live in base, which the drain cancels with
	// uploads.ErrDraining shortly before its end: bodies still being read
	// fail at once and their requests are answered 503 while their
	// connections are open, instead of being cut without an answer.
	base, cut := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cut(nil)
	srv.BaseContext = func(net.Listener) context.Context { return base }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "addr", l.Addr().String(), "timeout", timeout.String())
	grace := min(timeout/4, 2*time.Second) // to answer the requests cut
	err := shutdown(ctx, srv, timeout-grace)
	if err != nil {
		log.Warn("requests still running at the end of the drain: cutting them", "addr", l.Addr().String())
		cut(uploads.ErrDraining)
		err = shutdown(ctx, srv, grace)
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown %s: %w", l.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdown is srv.Shutdown within d.
func shutdown(ctx context.Context, srv *http.Server, d time.Duration) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	return srv.Shutdown(sctx)
}

// MetricsRegistry is one process's Prometheus registry with the Go
// runtime and process series. Each process builds its own, so nothing
// registers globally and tests can run many processes side by side.
func MetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	return reg
}

// ShutdownTracing flushes the spans not yet exported, for a few seconds
// at most, after the process has stopped serving.
func ShutdownTracing(ctx context.Context, t *telemetry.Tracing, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(sctx); err != nil {
		log.Warn("flushing traces", "err", err)
	}
}

// Check is one readiness dependency, such as Redis or S3. A check must
// honour its context's deadline and must not retry: the caller bounds it.
type Check func(ctx context.Context) error

// ReadyTimeout bounds each check of one readiness answer, so /readyz
// answers within about this long whatever its dependencies do (a probe
// with a 1 s timeout gets its answer).
const ReadyTimeout = 750 * time.Millisecond

// Ready answers GET /readyz for the API and the worker alike:
// {"ok":true,"checks":{"redis":"ok","s3":"ok"}} with 200 when every
// dependency answers, 503 with the failing ones "unavailable" otherwise.
// The checks run at once, each within ReadyTimeout; a check that has not
// answered by then counts as unavailable and is left to end on its own.
func Ready(checks map[string]Check) http.Handler { return ReadyWith(checks, nil) }

// ReadyWith is Ready whose answer also carries the fields extra returns
// (the actions file's version in service).
func ReadyWith(checks map[string]Check, extra func() map[string]any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, ok := runChecks(r.Context(), checks, ReadyTimeout)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		answer := map[string]any{"ok": ok, "checks": status}
		if extra != nil {
			maps.Copy(answer, extra())
		}
		_ = json.NewEncoder(w).Encode(answer)
	})
}

// runChecks runs every check at once and returns within timeout, with
// "ok" or "unavailable" per check and whether all were ok.
func runChecks(ctx context.Context, checks map[string]Check, timeout time.Duration) (map[string]string, bool) {
	errs := probeChecks(ctx, checks, timeout)
	status := make(map[string]string, len(checks))
	ok := true
	for name := range checks {
		if errs[name] == nil {
			status[name] = "ok"
		} else {
			status[name] = "unavailable"
			ok = false
		}
	}
	return status, ok
}

// errNoAnswer is a check's error when it did not answer in time.
var errNoAnswer = errors.New("no answer within the readiness timeout")

// probeChecks runs every check at once and returns within timeout with
// each check's error: nil when it answered, errNoAnswer when it did not
// answer in time.
func probeChecks(ctx context.Context, checks map[string]Check, timeout time.Duration) map[string]error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(checks)) // buffered: late checks never block
	for name, check := range checks {
		go func() { results <- result{name, check(ctx)} }()
	}
	errs := make(map[string]error, len(checks))
	for name := range checks {
		errs[name] = errNoAnswer
	}
	for range checks {
		select {
		case r := <-results:
			errs[r.name] = r.err
		case <-ctx.Done():
			// A check that ignores its deadline does not hold the answer.
			return errs
		}
	}
	return errs
}

// Health keeps the state of each dependency, probed in the background,
// so a request can be refused at once while one is down rather than after
// its own calls time out and retry. A dependency is down after
// HealthFailures consecutive failed probes (one slow probe on a loaded
// host is not an outage) and up again after one good probe. Each change
// is logged once: WARN with the dependency and the error when it goes
// down, INFO when it comes back. The zero state is healthy: until probes
// fail, nothing is refused.
type Health struct {
	checks   map[string]Check
	interval time.Duration
	log      *slog.Logger

	mu       sync.Mutex
	failures map[string]int // consecutive failed probes, by dependency
	down     []string       // names of the dependencies that are down, sorted
}

// HealthInterval is how often Health probes. With ReadyTimeout and
// HealthFailures it bounds how long an outage goes unnoticed: a refused
// connection is noticed one interval after its first failed probe, a hung
// server after two probes of ReadyTimeout each.
const HealthInterval = 200 * time.Millisecond

// HealthFailures is how many consecutive probes must fail before a
// dependency counts as down.
const HealthFailures = 2

// ErrDependencyDown is Health's answer while a dependency is down.
var ErrDependencyDown = errors.New("a dependency is down")

// NewHealth probes checks every HealthInterval once Run runs and logs
// each dependency's changes of state on log.
func NewHealth(checks map[string]Check, log *slog.Logger) *Health {
	return &Health{checks: checks, interval: HealthInterval, log: log, failures: map[string]int{}}
}

// Run probes until ctx ends. Health opens nothing of its own (its checks
// use their owners' clients, under a context that ends with ctx), so it
// has no Close: ending ctx is its whole shutdown.
func (h *Health) Run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		h.Probe(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Probe runs every check once, within ReadyTimeout, and updates the
// state; Run calls it every interval.
func (h *Health) Probe(ctx context.Context) {
	errs := probeChecks(ctx, h.checks, ReadyTimeout)
	if ctx.Err() != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var down []string
	for _, name := range sortedNames(h.checks) {
		err := errs[name]
		was := h.failures[name] >= HealthFailures
		if err == nil {
			h.failures[name] = 0
			if was {
				h.log.Info("dependency up", "dependency", name)
			}
			continue
		}
		h.failures[name]++
		if h.failures[name] >= HealthFailures {
			down = append(down, name)
			if !was {
				h.log.Warn("dependency down; refusing submissions and uploads until it answers", "dependency", name,
					"err", err.Error(), "failed_probes", h.failures[name])
			}
		}
	}
	h.down = down
}

// Err is nil while every dependency is up, else an error wrapping
// ErrDependencyDown that names the ones that are down.
func (h *Health) Err() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.down) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrDependencyDown, strings.Join(h.down, ", "))
}

func sortedNames(checks map[string]Check) []string {
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Healthz answers GET /healthz: the process is alive.
func Healthz(alive func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if alive != nil {
			if err := alive(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, `{"ok":false}`)
				return
			}
		}
		fmt.Fprintln(w, `{"ok":true}`)
	})
}
