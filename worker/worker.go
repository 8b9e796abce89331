// Package worker is one worker of formq's fleet as a Go value: it takes
// accepted submissions from the queue, runs their follow-up steps (the
// built-in thumbnail, webhook and email steps, and any you register) and
// publishes their revalidation events to Redis and to the sinks (the
// built-in ones the configuration sets up, and any you add). New builds it
// from a formq.Config; Run works until its context ends. Step types and
// sinks of your own are written against package jobs/step.
//
//	w, err := worker.New(ctx, cfg, worker.Options{
//		Steps: step.Steps{"crm": crmStep},
//		Sinks: []step.Sink{purgeMyCache},
//	})
//	if err != nil { ... }
//	err = w.Run(ctx)
package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/reload"
	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/internal/wire"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/email"
	"github.com/formq/formq/jobs/step/webhook"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/formq/formq/worker/engine"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// taskCheckInterval is how often an idle worker looks for new tasks.
const taskCheckInterval = 100 * time.Millisecond

// waitCheckInterval is how often an idle worker looks for submissions
// someone waits for (submission.WaitQueue), when an action declares
// wait:. asynq polls rather than blocks: this costs an idle worker about
// 1000/5 = 200 Redis script calls per second (docs/operations.md).
const waitCheckInterval = 5 * time.Millisecond

// Options change what New builds beyond the Config.
type Options struct {
	// Logger receives the worker's logs; JSON on os.Stdout at the
	// configured level when nil.
	Logger *slog.Logger
	// Steps are step types of your own, registered beside the built-ins
	// (a name of a built-in replaces it). Give the API the same value.
	Steps step.Steps
	// Sinks are sinks of your own, told of every revalidation event after
	// the built-in ones (FORMQ_REVALIDATE_URL, Cloudflare, Fastly,
	// Next.js), each as a step of its own at the end of every submission.
	Sinks []step.Sink
	// Mailer sends the email steps' messages instead of SMTP
	// (FORMQ_SMTP_URL) or, in development, the log.
	Mailer email.Mailer
	// Getenv reads the secrets steps name (webhook secret_env); os.Getenv
	// when nil.
	Getenv func(string) string
}

// Worker is one worker process's parts.
type Worker struct {
	cfg   formq.Config
	log   *slog.Logger
	rdb   *redis.Client
	store *uploads.Store
	srv   *asynq.Server
	fast  *asynq.Server // the waiting queue's, when an action waits
	// mux runs tasks with the index of the actions file in service; a
	// task keeps the one it started with.
	mux     atomic.Pointer[asynq.ServeMux]
	newMux  func(*jobs.Index) *asynq.ServeMux
	steps   map[string]submission.StepCheck
	reg     *prometheus.Registry
	tracing *telemetry.Tracing
	janitor *uploads.Janitor
	retain  *engine.RetentionSweep
	digests *engine.Digests
	mailer  email.Mailer // nil: none configured
	// reloader reloads the actions file on a change or SIGHUP.
	reloader *reload.Reloader

	closeOnce sync.Once
}

// New builds a worker: it connects to Redis and S3 (checking both
// answer), builds the step types and checks the actions file against
// them, secrets included, so a worker that cannot run a declared step
// stops here.
//
// New dials Redis and S3. When it fails it has closed whatever it had
// opened; otherwise call Run, or Close if the Worker will not run.
func New(ctx context.Context, cfg formq.Config, o Options) (*Worker, error) {
	w, err := build(ctx, cfg, o)
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// build makes the Worker's parts in order. It returns the Worker even on
// an error, so New can close what was opened before the failure.
func build(ctx context.Context, cfg formq.Config, o Options) (w *Worker, err error) {
	log := o.Logger
	if log == nil {
		log = wire.Logger(os.Stdout, cfg, "worker")
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	w = &Worker{cfg: cfg, log: log}
	if w.rdb, err = wire.Redis(ctx, cfg); err != nil {
		return w, err
	}
	if w.store, err = wire.Store(ctx, cfg); err != nil {
		return w, err
	}
	engine.CheckRedisDurability(ctx, w.rdb, log)
	webhooks := webhook.NewClient(cfg.WebhookAllowPrivate)
	mailer, err := buildMailer(cfg, o.Mailer, log)
	if err != nil {
		return w, err
	}
	w.mailer = mailer
	steps, err := buildSteps(cfg, getenv, w.store, webhooks, mailer, email.NewRedisRecipients(w.rdb), log)
	if err != nil {
		return w, err
	}
	sinks, err := buildSinks(cfg, webhooks)
	if err != nil {
		return w, err
	}
	sinks = append(sinks, o.Sinks...)
	for name, t := range o.Steps {
		steps.Register(name, t)
	}
	w.steps = steps.Checks()
	version, err := reload.ReadVersion(cfg.Actions)
	if err != nil {
		return w, err
	}
	declared, err := actions.LoadFileWith(cfg.Actions, actions.ParseOptions{Steps: w.steps})
	if err != nil {
		return w, err
	}
	if err := w.canSendDigests(declared); err != nil {
		return w, err
	}

	w.reg = wire.MetricsRegistry()
	metrics := engine.NewMetrics(w.reg)
	if w.tracing, err = telemetry.NewTracing(ctx, cfg.OTelEndpoint, "formq-worker"); err != nil {
		return w, err
	}
	tracer := w.tracing.Tracer("formq/jobs")
	w.reg.MustRegister(engine.NewQueueCollector(asynq.NewInspectorFromRedisClient(w.rdb), submission.AllQueues, 5*time.Second))

	index := w.index(declared)
	w.retain = engine.NewRetention(index, w.periods(declared), engine.RetentionConfig{
		Interval: cfg.JanitorInterval, Claim: w.claim(submission.RetentionLock),
		Registerer: w.reg, Log: log.With("component", "retention"),
	})
	w.retain.SetSpam(spamKeep(declared))
	w.digests = engine.NewDigests(index, declared, engine.DigestConfig{
		Redis: w.rdb, Mailer: mailer, InboxURL: inboxURL(cfg), Interval: digestInterval, Log: log.With("component", "digest"),
	})
	publisher, status, traced := jobs.NewRedisPublisher(w.rdb, cfg.EventsMaxLen), jobs.NewStatusStore(w.rdb), engine.Traced(steps, tracer)
	w.newMux = func(index *jobs.Index) *asynq.ServeMux {
		mux := engine.NewMux(engine.Deps{
			Records:   w.store,
			Files:     w.store,
			Index:     index,
			Publisher: publisher,
			Status:    status,
			Steps:     traced,
			Sinks:     sinks,
			Metrics:   metrics,
			Log:       log,
		})
		mux.Use(engine.Middleware(metrics, tracer))
		return mux
	}
	w.mux.Store(w.newMux(index))
	w.reloader = reload.New(cfg.Actions, version, w.load, w.reg, log)
	w.srv = w.newServer(queueWeights(), taskCheckInterval)
	for _, a := range declared {
		if a.Wait > 0 {
			// Someone waits for these: look for them every few ms.
			w.fast = w.newServer(map[string]int{submission.WaitQueue: 1}, waitCheckInterval)
			break
		}
	}
	if cfg.JanitorInterval > 0 {
		w.janitor = uploads.NewJanitor(w.store, uploads.JanitorConfig{
			Interval:  cfg.JanitorInterval,
			Claim:     w.claim(submission.JanitorLock),
			MinAge:    cfg.JanitorMinAge,
			StagedAge: max(cfg.JanitorMinAge, actions.MaxUploadRefTTL+time.Hour),
			TusExpiry: cfg.TusExpiry,
			Keep:      jobs.SubmissionKept(w.store, asynq.NewInspectorFromRedisClient(w.rdb)),
			Log:       log.With("component", "janitor"),
		})
	}
	return w, nil
}

// digestInterval is how often the worker looks for digests due: one goes
// out within a minute of its time.
const digestInterval = time.Minute

// canSendDigests refuses a declaration with a digest when the worker has
// no mailer to send it with.
func (w *Worker) canSendDigests(declared []*actions.Action) error {
	for _, a := range declared {
		if a.Digest != nil && w.mailer == nil {
			return fmt.Errorf("%w: action %q has a digest: but there is no mailer; set FORMQ_SMTP_URL", formq.ErrInvalid, a.Name)
		}
	}
	return nil
}

// claim is the Claim of a sweep every worker runs: a Redis lock, so one
// worker of the fleet sweeps per interval.
func (w *Worker) claim(lock string) func(context.Context) bool {
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s/%d", host, os.Getpid())
	hold := w.cfg.JanitorInterval * 9 / 10
	return func(ctx context.Context) bool {
		ok, err := w.rdb.SetNX(ctx, lock, owner, hold).Result()
		return err == nil && ok
	}
}

// index is the submissions index of a declaration: its personal fields.
func (w *Worker) index(declared []*actions.Action) *jobs.Index {
	return jobs.NewIndex(w.rdb, w.store).WithPersonal(actions.PersonalFields(declared)).WithHidden(actions.HiddenFields(declared))
}

// periods are the retention periods of a declaration's actions, each
// action's own or FORMQ_RETENTION.
func (w *Worker) periods(declared []*actions.Action) map[string]time.Duration {
	periods := map[string]time.Duration{}
	for _, a := range declared {
		periods[a.Name] = a.Retention
		if a.Retention == 0 {
			periods[a.Name] = time.Duration(w.cfg.Retention)
		}
	}
	return periods
}

// spamKeep is how long each action with spam: keeps its spam.
func spamKeep(declared []*actions.Action) map[string]time.Duration {
	keep := map[string]time.Duration{}
	for _, a := range declared {
		if a.Spam != nil {
			keep[a.Name] = a.Spam.KeepFor
		}
	}
	return keep
}

// load checks the actions file as it is now against the worker's step
// types and secrets and puts its index and retention periods in service;
// tasks running finish with those they began with. A file the worker
// could not serve is refused and the version in service stays. (A
// submission carries its steps, so a changed step applies to submissions
// accepted after the API reloaded.)
func (w *Worker) load(ctx context.Context, version string) error {
	declared, err := actions.LoadFileWith(w.cfg.Actions, actions.ParseOptions{Steps: w.steps})
	if err != nil {
		return err
	}
	if err := w.canSendDigests(declared); err != nil {
		return err
	}
	index := w.index(declared)
	w.mux.Store(w.newMux(index))
	w.retain.Set(index, w.periods(declared))
	w.retain.SetSpam(spamKeep(declared))
	w.digests.Set(index, declared)
	if w.fast == nil && slices.ContainsFunc(declared, func(a *actions.Action) bool { return a.Wait > 0 }) {
		w.log.Warn("an action now declares wait:; until the worker restarts, the main server takes its submissions, polling every second instead of every few ms")
	}
	return nil
}

// Reload loads the actions file again (what SIGHUP does); an error says
// why it was refused, and the version in service stays.
func (w *Worker) Reload(ctx context.Context) error { return w.reloader.Reload(ctx) }

// ActionsVersion names the actions file in service, as /readyz and
// formq_actions_version_info show it.
func (w *Worker) ActionsVersion() string {
	v, _ := w.reloader.Version()
	return v
}

// newServer builds an asynq server taking tasks from the queues, polling
// them every check when they are empty.
func (w *Worker) newServer(queues map[string]int, check time.Duration) *asynq.Server {
	return asynq.NewServerFromRedisClient(w.rdb, asynq.Config{
		Concurrency:              w.cfg.WorkerConcurrency,
		Queues:                   queues,
		TaskCheckInterval:        check,
		DelayedTaskCheckInterval: time.Second, // retries wait their step's backoff, not 5 s more
		RetryDelayFunc:           engine.RetryDelay,
		ShutdownTimeout:          w.cfg.ShutdownTimeout,
		Logger:                   asynqLogger{w.log.With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
	})
}

// queueWeights are the priorities of the main server: the queues actions
// choose, and the waiting queue first (the fast server's, taken here too
// when that one is busy).
func queueWeights() map[string]int {
	q := make(map[string]int, len(submission.QueueWeights)+1)
	for name, weight := range submission.QueueWeights {
		q[name] = weight
	}
	q[submission.WaitQueue] = 2 * q["critical"]
	return q
}

// Handler answers the worker's /healthz, /readyz and /metrics.
func (w *Worker) Handler() http.Handler {
	hm := http.NewServeMux()
	hm.Handle("GET /healthz", wire.Healthz(w.srv.Ping))
	hm.Handle("GET /readyz", wire.ReadyWith(map[string]wire.Check{
		"redis": func(ctx context.Context) error { return w.rdb.Ping(ctx).Err() },
		"s3":    w.store.Ping,
	}, func() map[string]any { return map[string]any{"actions": w.reloader.Status()} }))
	hm.Handle("GET /metrics", promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{}))
	return hm
}

// Run processes tasks until ctx ends, with the janitor, the recoverer of
// dead workers' tasks and, when FORMQ_WORKER_ADDR is set, the health
// server; then it stops taking tasks, lets the running ones finish (or go
// back to the queue) within FORMQ_SHUTDOWN_TIMEOUT, waits for every loop
// it started and closes its connections. A Worker runs once.
func (w *Worker) Run(ctx context.Context) error {
	defer w.close()
	// The recoverer uses asynq's key layout: refuse to run on another.
	if err := jobs.CheckLayout(ctx, w.rdb); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	// Tasks run on long-lived goroutines (see engine.Runners).
	runners := engine.NewRunners(w.cfg.WorkerConcurrency)
	defer runners.Close()
	// Each task runs on the mux in service when it starts.
	mux := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error { return w.mux.Load().ProcessTask(ctx, t) })
	if err := w.srv.Start(runners.Handler(mux)); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	if w.fast != nil {
		if err := w.fast.Start(runners.Handler(mux)); err != nil {
			w.srv.Shutdown()
			return fmt.Errorf("worker: start the waiting queue's server: %w", err)
		}
	}
	w.log.Info("processing", "concurrency", w.cfg.WorkerConcurrency)
	// The recoverer keeps working until the server has stopped, so tasks
	// of workers that died meanwhile are not left waiting.
	rctx, stopRecoverer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRecoverer()
	var loops errgroup.Group
	if w.cfg.ActionsWatch > 0 {
		loops.Go(func() error { w.reloader.Run(ctx, w.cfg.ActionsWatch); return nil })
	}
	loops.Go(func() error {
		// asynq reclaims a dead worker's tasks only 60-120 s after the
		// kill; this brings it down to about 7-14 s (see jobs.Recoverer).
		_ = jobs.NewRecoverer(w.rdb, submission.AllQueues, w.log).Run(rctx)
		return nil
	})
	// Always: a reloaded file may declare a digest.
	loops.Go(func() error { _ = w.digests.Run(ctx); return nil })
	if w.janitor != nil {
		loops.Go(func() error { _ = w.janitor.Run(ctx); return nil })
		// Always: a reloaded file may declare a retention.
		loops.Go(func() error { _ = w.retain.Run(ctx); return nil })
	}

	var serveErr error
	if w.cfg.WorkerAddr != "" {
		serveErr = w.serveHealth(ctx)
	} else {
		<-ctx.Done()
	}
	// Stop taking tasks; in-flight ones finish or go back to the queue.
	if w.fast != nil {
		w.fast.Shutdown()
	}
	w.srv.Shutdown()
	runners.Close()
	stopRecoverer()
	_ = loops.Wait()
	w.log.Info("stopped")
	if serveErr != nil {
		return fmt.Errorf("worker: %w", serveErr)
	}
	return nil
}

func (w *Worker) serveHealth(ctx context.Context) error {
	l, err := wire.Listen(w.cfg.WorkerAddr, "FORMQ_WORKER_ADDR")
	if err != nil {
		return err
	}
	hsrv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	w.log.Info("listening", "addr", l.Addr().String(), "url", "http://"+l.Addr().String())
	return wire.Serve(ctx, hsrv, l, 5*time.Second, w.log)
}

// Close releases the connections of a Worker that will not Run (Run
// closes them itself when it returns). Close is safe to call more than
// once, and after Run.
func (w *Worker) Close() error {
	w.close()
	return nil
}

func (w *Worker) close() {
	w.closeOnce.Do(w.release)
}

func (w *Worker) release() {
	if w.rdb != nil {
		_ = w.rdb.Close()
	}
	if w.tracing != nil {
		wire.ShutdownTracing(context.Background(), w.tracing, w.log)
	}
}

// Main is the worker command: it reads the configuration from getenv and
// works until ctx ends.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := formq.LoadConfig(getenv)
	if err != nil {
		return err
	}
	log, flush := wire.ProcessLogger(stdout, cfg, "worker")
	defer flush()
	log.Info("starting", "config", cfg)
	w, err := New(ctx, cfg, Options{Logger: log, Getenv: getenv})
	if err != nil {
		return err
	}
	// SIGHUP reloads the actions file instead of stopping the process.
	return w.reloader.WhileServing(ctx, w.Run)
}

// asynqLogger sends asynq's logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
