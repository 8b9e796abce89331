package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/admin"
	"github.com/formq/formq/actions/captcha"
	"github.com/formq/formq/actions/pages"
	"github.com/formq/formq/actions/routes"
	"github.com/formq/formq/actions/spam"
	"github.com/formq/formq/actions/staging"
	statuses "github.com/formq/formq/actions/status"
	"github.com/formq/formq/actions/submit"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/audit"
	"github.com/formq/formq/internal/redisstate"
	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// builder holds what the API's routes are built from besides the actions
// file: the parts made once at start (connections, stores, metrics,
// gate). Each version of the actions file gets routes of its own from it.
type builder struct {
	cfg     formq.Config
	log     *slog.Logger
	steps   map[string]submission.StepCheck
	checks  map[string]Check
	allowed []string
	auth    *web.Authenticator
	sealer  *seal.Sealer
	rdb     *redis.Client
	store   *uploads.Store
	tracer  trace.Tracer
	queue   *asynq.Client
	status  *jobs.StatusStore
	hub     *jobs.Hub
	streams *redisstate.StreamCounts
	done    <-chan struct{}
	metrics *web.Metrics
	getenv  func(string) string
	site    *web.Site
	gate    *web.Gate
	ready   http.Handler

	enqueuer *jobs.Enqueuer
	waiter   *jobs.Waiter
}

// declaration is one version of the actions file, read and checked.
type declaration struct {
	*actions.Declarations
	registry *actions.Registry
}

// declare reads and checks the actions file as it is now, with the
// checks from Go attached to their actions.
func (b *builder) declare() (*declaration, error) {
	decl, err := actions.Load(b.cfg.Actions, actions.ParseOptions{Steps: b.steps})
	if err != nil {
		return nil, err
	}
	registry := actions.NewRegistry(decl.Actions...)
	for name, check := range b.checks {
		act, ok := registry.Get(name)
		if !ok {
			return nil, fmt.Errorf("api: a check is given for action %q, which %s does not declare", name, b.cfg.Actions)
		}
		act.Check = check
	}
	if err := web.CheckRedirects(decl.Actions, b.allowed, allowedOriginsSetting); err != nil {
		return nil, err
	}
	return &declaration{Declarations: decl, registry: registry}, nil
}

// routes builds every route of one version of the actions file.
func (b *builder) routes(decl *declaration) (*echo.Echo, error) {
	cfg, log, registry := b.cfg, b.log, decl.registry
	captchas, err := captcha.New(captcha.Config{Getenv: b.getenv, Sealer: b.sealer, Uses: redisstate.NewReplays(b.rdb), Origins: b.allowed}, registry, redisstate.NewReplays(b.rdb))
	if err != nil {
		return nil, err
	}
	index := jobs.NewIndex(b.rdb, b.store).WithPersonal(actions.PersonalFields(decl.Actions)).WithHidden(actions.HiddenFields(decl.Actions))
	parts := routes.Parts{Metrics: b.metrics, MetricsElsewhere: cfg.MetricsAddr != "", Ready: b.ready, Captcha: captchas}
	if parts.Submit, err = submit.New(submit.Config{ReaderLimits: uploads.DefaultReaderLimits, ReadIdle: cfg.UploadIdle, Profiles: decl.Profiles}, submit.Deps{
		Actions: registry, Files: b.store, Queue: b.enqueuer, Log: log, Gate: b.gate, Site: b.site, Sealer: b.sealer,
		Objects: b.store, Captcha: captchas, Waiter: b.waiter, Spam: spamChecker(b.rdb),
		Memory: submit.Memory{Claims: redisstate.NewRefClaims(b.rdb), Idempotency: redisstate.NewIdempotency(b.rdb), Inbox: index, Queued: index,
			Stamps: redisstate.NewReplays(b.rdb), States: redisstate.NewReplays(b.rdb)},
	}); err != nil {
		return nil, err
	}
	stagingCfg := staging.Config{Profiles: decl.Profiles, ReaderLimits: uploads.DefaultReaderLimits, ReadIdle: cfg.UploadIdle,
		Tus: tusComposer(cfg, b.store, redisstate.NewTusLocker(b.rdb)), TusExpiry: cfg.TusExpiry, Captcha: captchas,
		TusUploads: redisstate.NewTusUploads(b.rdb), TusClientUploads: cfg.TusClientUploads}
	if parts.Staging, err = staging.New(stagingCfg, registry, b.store, b.sealer, b.gate, b.site, log); err != nil {
		return nil, err
	}
	parts.Status = statuses.New(statuses.Config{
		AdminToken: cfg.AdminToken, EventsToken: cfg.EventsToken, StreamsPerClient: cfg.StreamsPerClient, StreamsMax: cfg.StreamsMax,
	}, statuses.Deps{Actions: registry, Sealer: b.sealer, Status: b.status, Events: b.hub, Done: b.done, Site: b.site, Log: log, Records: b.store,
		Streams: b.streams})
	if parts.Pages, err = pages.New(pages.Config{Theme: decl.Theme}, pages.Deps{
		Actions: registry, Site: b.site, Sealer: b.sealer, Gate: b.gate, Status: parts.Status, Records: b.store, Log: log,
	}); err != nil {
		return nil, err
	}
	if parts.Admin, err = admin.New(admin.Config{Token: cfg.AdminToken, Admins: cfg.Admins, Proxies: cfg.AdminProxies, OIDC: admin.OIDCConfig{
		Issuer: cfg.AdminOIDCIssuer, ClientID: cfg.AdminOIDCClientID, ClientSecret: cfg.AdminOIDCClientSecret, Scopes: cfg.AdminOIDCScopes, GroupsClaim: cfg.AdminOIDCGroupsClaim,
	}}, admin.Deps{
		Actions: registry, Sealer: b.sealer, Inbox: index, Links: b.store, Status: b.status,
		Redeliveries: jobs.NewRedeliverer(b.queue, b.status, log), Spam: index, Releaser: jobs.NewReleaser(b.queue), Queues: queueDashboard(cfg), Site: b.site, Log: log,
		Audit: audit.New(b.rdb, time.Duration(cfg.AuditRetention), jobs.NewSalt(b.rdb)),
	}); err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = web.ErrorHandler(log, parts.Pages)
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	e.Use(middleware.RequestID())
	e.Use(web.RequestScopeSampled(b.tracer, log, cfg.AccessLogSample))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableErrorHandler: false}))
	e.Use(b.metrics.Middleware(func(name string) bool { _, ok := registry.Get(name); return ok }))
	e.Use(routes.CORS(registry, corsOrigins(b.allowed, decl.Profiles)))
	if err := routes.Register(e, parts); err != nil {
		return nil, err
	}
	return e, nil
}

// spamChecker is the spam check of actions with spam:, remembering recent
// posts and the model in Redis.
func spamChecker(rdb redis.UniversalClient) *spam.Checker {
	store := jobs.NewSpamStore(rdb)
	return &spam.Checker{Memory: store, Model: store}
}
