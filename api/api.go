// Package api is formq's HTTP API as a Go value. New builds it from a
// formq.Config; serve it on its own (ListenAndServe, what the api command
// runs) or mount it in your own echo app or http.ServeMux under a prefix
// (Mount, MountEcho), with your own validation checks and step types.
//
//	a, err := api.New(ctx, cfg, api.Options{Steps: mySteps})
//	if err != nil { ... }
//	defer a.Close()
//	go a.Run(ctx)            // the events hub
//	a.MountEcho(e, "/forms") // POST /forms/actions/{name}, ...
package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/redisstate"
	"github.com/formq/formq/internal/reload"
	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/internal/wire"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// Check is a validation check across fields of one action, run after the
// action's declared rules pass; the field errors it returns are answered
// like theirs (422 with messages per field, kept values).
type Check func(ctx context.Context, values map[string]any) actions.FieldErrors

// Options change what New builds beyond the Config.
type Options struct {
	// Logger receives the API's logs; JSON on os.Stdout at the
	// configured level when nil.
	Logger *slog.Logger
	// Steps are step types registered from Go (the same value the
	// worker gets), so actions that declare them load; the API only
	// checks their settings.
	Steps step.Steps
	// Checks are validation checks by action name.
	Checks map[string]Check
	// Getenv reads the secrets actions name (captcha secret_env);
	// os.Getenv when nil.
	Getenv func(string) string
}

// API is one formq API: its routes and the parts behind them.
type API struct {
	cfg     formq.Config
	log     *slog.Logger
	routes  atomic.Pointer[echo.Echo] // of the actions file in service
	builder *builder
	// reloader reloads the actions file on a change or SIGHUP.
	reloader *reload.Reloader
	site     *web.Site
	metrics  *web.Metrics
	rdb      *redis.Client
	queue    *asynq.Client
	hub      *jobs.Hub
	streams  *redisstate.StreamCounts
	health   *wire.Health
	tracing  *telemetry.Tracing

	done     chan struct{} // closed when Run's context ends: streams end
	doneOnce sync.Once
}

// New builds the API from a configuration: it reads the actions file,
// connects to Redis and S3 (checking both answer) and registers every
// route. Close releases what it opened. Run reloads the actions file when
// it changes (FORMQ_ACTIONS_WATCH), Reload on demand (SIGHUP).
func New(ctx context.Context, cfg formq.Config, o Options) (a *API, err error) {
	log := o.Logger
	if log == nil {
		log = wire.Logger(os.Stdout, cfg, "api")
	}
	steps := builtin.Checks(nil)
	for name, t := range o.Steps {
		steps.Register(name, t)
	}
	version, err := reload.ReadVersion(cfg.Actions)
	if err != nil {
		return nil, err
	}
	allowed := cfg.AllowedOrigins
	if cfg.PublicURL != "" {
		// Behind a proxy that rewrites Host, the public origin is still
		// this service's own.
		u, _ := url.Parse(cfg.PublicURL)
		allowed = append([]string{u.Scheme + "://" + u.Host}, allowed...)
	}
	b := &builder{cfg: cfg, log: log, steps: steps.Checks(), checks: o.Checks, allowed: allowed}
	// The file is checked before anything is dialled: a bad file says so
	// at once.
	decl, err := b.declare()
	if err != nil {
		return nil, err
	}
	b.auth, err = web.NewAuthenticator(ctx, web.AuthConfig{
		HS256Secret: cfg.AuthHS256Key, JWKSURL: cfg.AuthJWKSURL, Cookie: cfg.AuthCookie,
		Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience,
	})
	if err != nil {
		return nil, err
	}
	if err := checkAuth(decl.registry, decl.Profiles, b.auth != nil); err != nil {
		return nil, err
	}
	newSealer := func() (*seal.Sealer, error) { return seal.New(cfg.Secret) }
	if cfg.Secret == "" { // development (production refuses it): a key of this process alone
		newSealer = seal.NewRandom
		log.Warn("FORMQ_SECRET is unset: bound arguments and upload references are sealed with a random key of this process; " +
			"they stop working when it restarts and other API processes cannot open them. Set FORMQ_SECRET (32+ characters) to keep them")
	}
	if b.sealer, err = newSealer(); err != nil {
		return nil, err
	}
	built := &API{cfg: cfg, log: log, done: make(chan struct{})}
	a = built
	defer func() {
		// a is nil on an error return; close what was opened.
		if err != nil {
			built.Close()
		}
	}()
	if a.rdb, err = wire.Redis(ctx, cfg); err != nil {
		return nil, err
	}
	store, err := wire.Store(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b.store = store
	if a.tracing, err = telemetry.NewTracing(ctx, cfg.OTelEndpoint, "formq-api"); err != nil {
		return nil, err
	}
	b.tracer = a.tracing.Tracer("formq/api")
	b.rdb = a.rdb
	a.queue = asynq.NewClientFromRedisClient(a.rdb)
	b.status = jobs.NewStatusStore(a.rdb)
	b.queue = a.queue
	// One reader of Redis for every event and status stream.
	a.hub = jobs.NewHub(a.rdb, log)
	b.hub, b.done = a.hub, a.done
	// Each client's open event streams, counted across the API processes.
	a.streams = redisstate.NewStreamCounts(a.rdb)
	b.streams = a.streams
	reg := wire.MetricsRegistry()
	b.metrics = web.NewMetrics(reg)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "formq_upload_buffers_in_use", Help: "Upload part buffers held by uploads now."},
			func() float64 { n, _ := store.Buffers(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "formq_upload_buffers_waiting", Help: "Uploads waiting for a part buffer now."},
			func() float64 { _, n := store.Buffers(); return float64(n) }),
	)

	b.enqueuer = jobs.NewEnqueuer(a.queue, b.status, log).WithGroupCommit(a.rdb).
		WithReplication(a.rdb, jobs.Replication{Replicas: cfg.RedisMinReplicas, Timeout: cfg.RedisReplicaTimeout})
	b.getenv = o.Getenv
	if b.getenv == nil {
		b.getenv = os.Getenv
	}
	checks := map[string]wire.Check{
		"redis": func(ctx context.Context) error { return a.rdb.Ping(ctx).Err() },
		"s3":    store.Ping,
	}
	// Probed in the background (by Run), so while Redis or S3 is down a
	// submission is refused at once instead of after its own calls time
	// out and retry.
	a.health = wire.NewHealth(checks, log)
	a.site = web.NewSite(web.SiteConfig{Base: cfg.PublicURL, AllowedOrigins: allowed, OriginsSetting: allowedOriginsSetting})
	b.site = a.site
	b.gate = web.NewGate(web.GateConfig{
		AllowedOrigins: allowed, StrictOrigins: cfg.StrictOrigins, OriginsSetting: allowedOriginsSetting, Health: a.health.Err,
	}, redisstate.NewRateLimiter(a.rdb), b.auth, b.metrics, log)
	b.waiter = jobs.NewWaiter(a.hub, b.status, cfg.WaitMax)
	a.reloader = reload.New(cfg.Actions, version, a.load, reg, log)
	b.ready = wire.ReadyWith(checks, func() map[string]any { return map[string]any{"actions": a.reloader.Status()} })
	a.metrics = b.metrics
	a.builder = b
	routes, err := b.routes(decl)
	if err != nil {
		return nil, err
	}
	a.routes.Store(routes)
	log.Info("api ready", "actions", decl.registry.Names(), "version", version)
	return a, nil
}

// load builds the routes of the actions file as it is now and puts them
// in service: requests already running finish on the routes they began
// with. A file that does not load, or whose actions the deployment cannot
// serve (auth without a verifier, a redirect to a foreign origin), is
// refused and the routes in service stay.
func (a *API) load(ctx context.Context, version string) error {
	decl, err := a.builder.declare()
	if err != nil {
		return err
	}
	if err := checkAuth(decl.registry, decl.Profiles, a.builder.auth != nil); err != nil {
		return err
	}
	routes, err := a.builder.routes(decl)
	if err != nil {
		return err
	}
	a.routes.Store(routes)
	return nil
}

// Reload loads the actions file again (what SIGHUP does); an error says
// why it was refused, and the version in service stays.
func (a *API) Reload(ctx context.Context) error { return a.reloader.Reload(ctx) }

// ActionsVersion names the actions file in service: the first 12 hex
// digits of its SHA-256, as /readyz and formq_actions_version_info show.
func (a *API) ActionsVersion() string {
	v, _ := a.reloader.Version()
	return v
}

// ServeHTTP serves the API's routes at the root of the path, those of the
// actions file in service when the request arrives.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.routes.Load().ServeHTTP(w, r) }

// Mount serves the API under prefix (like "/forms") on mux. Links the
// API writes (redirects, status URLs, hosted forms) carry the prefix,
// unless FORMQ_PUBLIC_URL says where the API is. Mount before serving.
func (a *API) Mount(mux *http.ServeMux, prefix string) {
	prefix = a.prefix(prefix)
	mux.Handle(prefix+"/", http.StripPrefix(prefix, a))
}

// MountEcho serves the API under prefix on an echo instance of yours,
// with formq's own error answers and middleware; yours run first.
func (a *API) MountEcho(e *echo.Echo, prefix string) {
	prefix = a.prefix(prefix)
	e.Any(prefix+"/*", echo.WrapHandler(http.StripPrefix(prefix, a)))
}

func (a *API) prefix(p string) string {
	p = "/" + strings.Trim(p, "/")
	if p == "/" {
		p = ""
	}
	if a.cfg.PublicURL == "" {
		a.site.SetBase(p)
	}
	return p
}

// Run runs the API's background work until ctx ends: the hub that reads
// events and status changes from Redis for every stream, the health
// probe that lets submissions fail fast while Redis or S3 is down, and
// the renewal of this process's counts of open streams; then it ends
// every open stream, waits for them all and returns.
func (a *API) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { a.hub.Run(ctx) })
	wg.Go(func() { a.health.Run(ctx) })
	wg.Go(func() { _ = a.streams.Run(ctx) })
	if a.cfg.ActionsWatch > 0 {
		wg.Go(func() { a.reloader.Run(ctx, a.cfg.ActionsWatch) })
	}
	<-ctx.Done()
	a.doneOnce.Do(func() { close(a.done) })
	wg.Wait()
	return nil
}

// ListenAndServe serves the API on FORMQ_ADDR until ctx ends, then shuts
// down gracefully within FORMQ_SHUTDOWN_TIMEOUT and closes everything.
func (a *API) ListenAndServe(ctx context.Context) error {
	defer a.Close()
	l, err := wire.Listen(a.cfg.Addr, "FORMQ_ADDR")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	a.log.Info("listening", "addr", l.Addr().String(), "url", "http://"+l.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	if a.cfg.MetricsAddr != "" {
		ml, err := wire.Listen(a.cfg.MetricsAddr, "FORMQ_METRICS_ADDR")
		if err != nil {
			l.Close()
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.Handler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
		a.log.Info("metrics listening", "addr", ml.Addr().String(), "url", "http://"+ml.Addr().String()+"/metrics")
		g.Go(func() error { return wire.Serve(gctx, msrv, ml, a.cfg.ShutdownTimeout, a.log) })
	}
	g.Go(func() error { return a.Run(gctx) })
	g.Go(func() error { return wire.Serve(gctx, srv, l, a.cfg.ShutdownTimeout, a.log) })
	if err := g.Wait(); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	a.log.Info("stopped")
	return nil
}

// Close releases the connections New opened and flushes traces; call it
// after Run and the servers using the API have returned.
func (a *API) Close() {
	if a.queue != nil {
		_ = a.queue.Close()
	}
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
	if a.tracing != nil {
		wire.ShutdownTracing(context.Background(), a.tracing, a.log)
	}
}

// Main is the api command: it reads the configuration from getenv and
// serves until ctx ends.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := formq.LoadConfig(getenv)
	if err != nil {
		return err
	}
	log, flush := wire.ProcessLogger(stdout, cfg, "api")
	defer flush()
	log.Info("starting", "config", cfg)
	a, err := New(ctx, cfg, Options{Logger: log, Getenv: getenv})
	if err != nil {
		return err
	}
	// SIGHUP reloads the actions file instead of stopping the process.
	return a.reloader.WhileServing(ctx, a.ListenAndServe)
}

// clientIP picks the client address: X-Forwarded-For only from the
// configured trusted proxies, the connection's address otherwise.
func clientIP(trusted []string) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		prefix := netip.MustParsePrefix(p)
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(prefix.Bits(), prefix.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// allowedOriginsSetting names the setting of the deployment's allowed
// origins in the messages that tell how to allow one.
const allowedOriginsSetting = "FORMQ_ALLOWED_ORIGINS"

// checkAuth refuses, at start, actions and upload profiles with auth when
// no way to verify users is configured.
func checkAuth(reg *actions.Registry, profiles actions.UploadProfiles, haveAuth bool) error {
	if haveAuth {
		return nil
	}
	for _, p := range profiles {
		if p.Gate.Auth != "" {
			return fmt.Errorf("upload profile %q has auth: %s but neither FORMQ_AUTH_HS256_SECRET nor FORMQ_AUTH_JWKS_URL is set", p.Name, p.Gate.Auth)
		}
	}
	for _, name := range reg.Names() {
		a, _ := reg.Get(name)
		if a.Auth != "" {
			return fmt.Errorf("action %q has auth: %s but neither FORMQ_AUTH_HS256_SECRET nor FORMQ_AUTH_JWKS_URL is set", a.Name, a.Auth)
		}
	}
	return nil
}

// corsOrigins are the origins the CORS middleware answers besides each
// action's own: the deployment's allowed origins and every upload
// profile's.
func corsOrigins(allowed []string, profiles actions.UploadProfiles) []string {
	out := slices.Clone(allowed)
	for _, p := range profiles {
		out = append(out, p.Gate.Origins...)
	}
	return out
}
