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
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/admin"
	"github.com/formq/formq/actions/captcha"
	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/routes"
	"github.com/formq/formq/actions/staging"
	statuses "github.com/formq/formq/actions/status"
	"github.com/formq/formq/actions/submit"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/redisstate"
	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/internal/wire"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
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
	e       *echo.Echo
	site    *web.Site
	metrics *web.Metrics
	rdb     *redis.Client
	queue   *asynq.Client
	hub     *jobs.Hub
	health  *wire.Health
	tracing *telemetry.Tracing

	done     chan struct{} // closed when Run's context ends: streams end
	doneOnce sync.Once
}

// New builds the API from a configuration: it reads the actions file,
// connects to Redis and S3 (checking both answer) and registers every
// route. Close releases what it opened.
func New(ctx context.Context, cfg formq.Config, o Options) (a *API, err error) {
	log := o.Logger
	if log == nil {
		log = wire.Logger(os.Stdout, cfg, "api")
	}
	steps := builtin.Checks(nil)
	for name, t := range o.Steps {
		steps.Register(name, t)
	}
	decl, err := actions.Load(cfg.Actions, actions.ParseOptions{Steps: steps.Checks()})
	if err != nil {
		return nil, err
	}
	registry := actions.NewRegistry(decl.Actions...)
	for name, check := range o.Checks {
		act, ok := registry.Get(name)
		if !ok {
			return nil, fmt.Errorf("api: a check is given for action %q, which %s does not declare", name, cfg.Actions)
		}
		act.Check = check
	}
	allowed := cfg.AllowedOrigins
	if cfg.PublicURL != "" {
		// Behind a proxy that rewrites Host, the public origin is still
		// this service's own.
		u, _ := url.Parse(cfg.PublicURL)
		allowed = append([]string{u.Scheme + "://" + u.Host}, allowed...)
	}
	if err := web.CheckRedirects(decl.Actions, allowed, allowedOriginsSetting); err != nil {
		return nil, err
	}
	auth, err := web.NewAuthenticator(ctx, web.AuthConfig{
		HS256Secret: cfg.AuthHS256Key, JWKSURL: cfg.AuthJWKSURL, Cookie: cfg.AuthCookie,
		Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience,
	})
	if err != nil {
		return nil, err
	}
	if err := checkAuth(registry, decl.Profiles, auth != nil); err != nil {
		return nil, err
	}
	newSealer := func() (*seal.Sealer, error) { return seal.New(cfg.Secret) }
	if cfg.Secret == "" { // development (production refuses it): a key of this process alone
		newSealer = seal.NewRandom
		log.Warn("FORMQ_SECRET is unset: bound arguments and upload references are sealed with a random key of this process; " +
			"they stop working when it restarts and other API processes cannot open them. Set FORMQ_SECRET (32+ characters) to keep them")
	}
	sealer, err := newSealer()
	if err != nil {
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
	if a.tracing, err = telemetry.NewTracing(ctx, cfg.OTelEndpoint, "formq-api"); err != nil {
		return nil, err
	}
	a.queue = asynq.NewClientFromRedisClient(a.rdb)
	status := jobs.NewStatusStore(a.rdb)
	// One reader of Redis for every event and status stream.
	a.hub = jobs.NewHub(a.rdb, log)
	reg := wire.MetricsRegistry()
	metrics := web.NewMetrics(reg)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "formq_upload_buffers_in_use", Help: "Upload part buffers held by uploads now."},
			func() float64 { n, _ := store.Buffers(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "formq_upload_buffers_waiting", Help: "Uploads waiting for a part buffer now."},
			func() float64 { _, n := store.Buffers(); return float64(n) }),
	)

	enqueuer := jobs.NewEnqueuer(a.queue, status, log).WithGroupCommit(a.rdb).
		WithReplication(a.rdb, jobs.Replication{Replicas: cfg.RedisMinReplicas, Timeout: cfg.RedisReplicaTimeout})
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	captchas, err := captcha.New(captcha.Config{Getenv: getenv}, registry, redisstate.NewReplays(a.rdb))
	if err != nil {
		return nil, err
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
	gate := web.NewGate(web.GateConfig{
		AllowedOrigins: allowed, StrictOrigins: cfg.StrictOrigins, OriginsSetting: allowedOriginsSetting, Health: a.health.Err,
	}, redisstate.NewRateLimiter(a.rdb), auth, metrics, log)
	index := jobs.NewIndex(a.rdb, store).WithPersonal(actions.PersonalFields(decl.Actions))
	parts := routes.Parts{Metrics: metrics, MetricsElsewhere: cfg.MetricsAddr != "", Ready: wire.Ready(checks)}
	if parts.Submit, err = submit.New(submit.Config{ReaderLimits: uploads.DefaultReaderLimits, ReadIdle: cfg.UploadIdle, Profiles: decl.Profiles}, submit.Deps{
		Actions: registry, Files: store, Queue: enqueuer, Log: log, Gate: gate, Site: a.site, Sealer: sealer,
		Objects: store, Claims: redisstate.NewRefClaims(a.rdb), Idempotency: redisstate.NewIdempotency(a.rdb),
		Captcha: captchas, Inbox: index, Waiter: jobs.NewWaiter(a.hub, status, cfg.WaitMax),
	}); err != nil {
		return nil, err
	}
	stagingCfg := staging.Config{Profiles: decl.Profiles, ReaderLimits: uploads.DefaultReaderLimits, ReadIdle: cfg.UploadIdle,
		Tus: tusComposer(cfg, store), TusExpiry: cfg.TusExpiry}
	if parts.Staging, err = staging.New(stagingCfg, registry, store, sealer, gate, a.site, log); err != nil {
		return nil, err
	}
	parts.Status = statuses.New(statuses.Config{
		AdminToken: cfg.AdminToken, EventsToken: cfg.EventsToken, StreamsPerClient: cfg.StreamsPerClient, StreamsMax: cfg.StreamsMax,
	}, statuses.Deps{Actions: registry, Sealer: sealer, Status: status, Events: a.hub, Done: a.done, Site: a.site, Log: log, Records: store})
	if parts.Pages, err = pages.New(pages.Config{Theme: decl.Theme}, pages.Deps{
		Actions: registry, Site: a.site, Sealer: sealer, Gate: gate, Status: parts.Status, Log: log,
	}); err != nil {
		return nil, err
	}
	if parts.Admin, err = admin.New(admin.Config{Token: cfg.AdminToken}, admin.Deps{
		Actions: registry, Sealer: sealer, Inbox: index, Links: store, Status: status,
		Redeliveries: jobs.NewRedeliverer(a.queue, status, log), Queues: queueDashboard(cfg), Site: a.site, Log: log,
	}); err != nil {
		return nil, err
	}
	a.metrics = metrics

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = web.ErrorHandler(log, parts.Pages)
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	e.Use(middleware.RequestID())
	e.Use(web.RequestScopeSampled(a.tracing.Tracer("formq/api"), log, cfg.AccessLogSample))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableErrorHandler: false}))
	e.Use(metrics.Middleware(func(name string) bool { _, ok := registry.Get(name); return ok }))
	e.Use(routes.CORS(registry, corsOrigins(allowed, decl.Profiles)))
	if err := routes.Register(e, parts); err != nil {
		return nil, err
	}
	a.e = e
	log.Info("api ready", "actions", registry.Names())
	return a, nil
}

// ServeHTTP serves the API's routes at the root of the path.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.e.ServeHTTP(w, r) }

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
// events and status changes from Redis for every stream, and the health
// probe that lets submissions fail fast while Redis or S3 is down; then
// it ends every open stream, waits for both and returns.
func (a *API) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { a.hub.Run(ctx) })
	wg.Go(func() { a.health.Run(ctx) })
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
	return a.ListenAndServe(ctx)
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
