package formq

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/handler"
	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// RunAPI serves formq's HTTP API until ctx ends.
func RunAPI(ctx context.Context, args []string, getenv Getenv, stdout io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg, "api")
	log.Info("starting", "config", cfg)

	decl, err := actions.Load(cfg.Actions, actions.ParseOptions{Steps: jobs.Builtins(jobs.BuiltinDeps{}).Checks()})
	if err != nil {
		return err
	}
	list, profiles := decl.Actions, decl.Profiles
	registry := actions.NewRegistry(list...)
	pages, err := handler.NewPages()
	if err != nil {
		return err
	}
	pages.Base = cfg.PublicURL
	allowed := cfg.AllowedOrigins
	if cfg.PublicURL != "" {
		// Behind a proxy that rewrites Host, the public origin is still
		// this service's own.
		u, _ := url.Parse(cfg.PublicURL)
		allowed = append([]string{u.Scheme + "://" + u.Host}, allowed...)
	}
	auth, err := handler.NewAuthenticator(ctx, handler.AuthConfig{
		HS256Secret: cfg.AuthHS256Key, JWKSURL: cfg.AuthJWKSURL, Cookie: cfg.AuthCookie,
		Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience,
	})
	if err != nil {
		return err
	}
	corsOrigins := slices.Clone(allowed)
	for _, p := range profiles {
		if p.Gate.Auth != "" && auth == nil {
			return fmt.Errorf("upload profile %q has auth: %s but neither FORMQ_AUTH_HS256_SECRET nor FORMQ_AUTH_JWKS_URL is set", p.Name, p.Gate.Auth)
		}
		corsOrigins = append(corsOrigins, p.Gate.Origins...)
	}
	for _, a := range list {
		if a.Auth != "" && auth == nil {
			return fmt.Errorf("action %q has auth: %s but neither FORMQ_AUTH_HS256_SECRET nor FORMQ_AUTH_JWKS_URL is set", a.Name, a.Auth)
		}
		if a.Template != "" {
			text, err := os.ReadFile(a.Template)
			if err != nil {
				return fmt.Errorf("action %q: %w", a.Name, err)
			}
			if err := pages.SetFormTemplate(a.Name, string(text)); err != nil {
				return err
			}
		}
	}

	sealer, err := seal.New(cfg.Secret)
	if err != nil {
		return err
	}
	rdb, err := newRedis(ctx, cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store, err := newStore(ctx, cfg)
	if err != nil {
		return err
	}
	queue := asynq.NewClientFromRedisClient(rdb)
	status := jobs.NewStatusStore(rdb)
	// One reader of the events stream for every /events subscriber.
	hub := jobs.NewHub(rdb, log)
	go hub.Run(ctx)
	reg := newMetricsRegistry()
	metrics := handler.NewMetrics(reg)
	tracing, err := telemetry.NewTracing(ctx, cfg.OTelEndpoint, "formq-api")
	if err != nil {
		return err
	}
	defer shutdownTracing(ctx, tracing, log)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = handler.ErrorHandler(log, pages)
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	e.Use(middleware.RequestID())
	e.Use(telemetry.EchoMiddleware(tracing.Tracer("formq/api"), log))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableErrorHandler: false}))
	e.Use(metrics.Middleware(func(name string) bool { _, ok := registry.Get(name); return ok }))
	e.Use(handler.CORS(registry, corsOrigins))
	h := &handler.Handler{
		Actions: registry, Files: store, Queue: jobs.NewEnqueuer(queue, status, log), Pages: pages, Log: log, Sealer: sealer,
		ReaderLimits: uploads.DefaultReaderLimits,
		Auth:         auth, Idempotency: handler.NewRedisIdempotency(rdb), Limiter: handler.NewRedisRateLimiter(rdb),
		AllowedOrigins: allowed, StrictOrigins: cfg.StrictOrigins,
		Metrics: metrics,
		Fleet:   handler.Fleet{Status: status, Events: hub, Done: ctx.Done(), Queues: queueDashboard(cfg)},
	}
	h.Profiles, h.Objects, h.ReadIdle = profiles, store, cfg.UploadIdle
	handler.Routes(e, h, map[string]handler.Check{
		"redis": func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		"s3":    store.Ping,
	}, cfg.AdminToken)

	l, err := listen(cfg.Addr, "FORMQ_ADDR")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Info("listening", "addr", l.Addr().String(), "url", "http://"+l.Addr().String(), "actions", registry.Names())
	if err := serve(ctx, srv, l, cfg.ShutdownTimeout, log); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	log.Info("stopped")
	return nil
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
