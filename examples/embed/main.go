// Command embed is an existing echo app that serves formq's API under
// /forms and runs a formq worker in the same process, with a step, a sink
// and a validation check of its own.
//
//	FORMQ_REDIS_URL=redis://127.0.0.1:6379/0 FORMQ_S3_BUCKET=forms ... go run .
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/formq/formq"
	"github.com/formq/formq/actions"
	"github.com/formq/formq/api"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/email"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/worker"
	"github.com/labstack/echo/v4"
	"golang.org/x/sync/errgroup"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := formq.LoadConfig(func(k string) string {
		if k == "FORMQ_ACTIONS" && getenv(k) == "" {
			return "actions.yaml"
		}
		return getenv(k)
	})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	audit := &auditLog{path: getenv("AUDIT_FILE")}
	steps := step.Steps{"audit": audit.step()}
	// Every revalidation event also goes to the app's own cache.
	pages := &pageCache{}

	forms, err := api.New(ctx, cfg, api.Options{
		Logger: log.With("part", "formq-api"),
		Steps:  steps,
		Checks: map[string]api.Check{"signup": noRoleAccounts},
	})
	if err != nil {
		return err
	}
	defer forms.Close()
	cfg.WorkerAddr = "" // the app serves its own health checks
	work, err := worker.New(ctx, cfg, worker.Options{
		Logger: log.With("part", "formq-worker"), Steps: steps, Sinks: []step.Sink{pages.sink()}, Getenv: getenv,
		Mailer: &outbox{path: getenv("OUTBOX_FILE")},
	})
	if err != nil {
		return err
	}

	// The app that was there before formq.
	e := echo.New()
	e.HideBanner = true
	e.GET("/", func(c echo.Context) error {
		return c.HTML(http.StatusOK, `<form method="post" action="/forms/actions/signup">
<input name="name" placeholder="Name"> <input name="email" type="email" placeholder="Email">
<button>Sign up</button></form>`)
	})
	e.GET("/welcome", func(c echo.Context) error { return c.String(http.StatusOK, "Welcome!") })
	forms.MountEcho(e, "/forms")

	addr := getenv("APP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:3000"
	}
	srv := &http.Server{Addr: addr, Handler: e}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return forms.Run(gctx) })
	g.Go(func() error { return work.Run(gctx) })
	g.Go(func() error {
		log.Info("app listening", "url", "http://"+addr)
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		return srv.Shutdown(context.WithoutCancel(gctx))
	})
	return g.Wait()
}

// noRoleAccounts refuses sign-ups with role addresses, a check across
// the declared rules that only Go can express.
func noRoleAccounts(_ context.Context, values map[string]any) actions.FieldErrors {
	email, _ := values["email"].(string)
	local, _, _ := strings.Cut(email, "@")
	switch strings.ToLower(local) {
	case "admin", "root", "postmaster":
		return actions.FieldErrors{"email": {"Please sign up with a personal address."}}
	}
	return nil
}

// outbox is the app's own mailer: instead of SMTP, email steps' messages
// go to a file (an email API client would sit here).
type outbox struct {
	path string
	mu   sync.Mutex
}

func (o *outbox) Send(_ context.Context, m *email.Email) error {
	if o.path == "" {
		return step.Permanent("OUTBOX_FILE is not set")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	f, err := os.OpenFile(o.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s to %s: %s\n", m.MessageID, strings.Join(m.To, ","), m.Subject)
	return err
}

// auditLog is the app's own follow-up step: one line per submission in a
// file. Steps may run more than once after a crash, so it writes each
// submission once.
type auditLog struct {
	path string
	mu   sync.Mutex
}

func (a *auditLog) step() step.Type {
	return step.Type{
		Check: func(cfg map[string]any) error {
			if _, ok := cfg["note"].(string); !ok {
				return errors.New("note: want a short text")
			}
			return nil
		},
		Run: func(ctx context.Context, r step.Run) error {
			if a.path == "" {
				return step.Permanent("AUDIT_FILE is not set")
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			line := fmt.Sprintf("%s %s %v %s\n", r.Submission.ID, r.Submission.Action, r.Submission.Values["email"], r.Config["note"])
			old, _ := os.ReadFile(a.path)
			if strings.Contains(string(old), r.Submission.ID+" ") {
				return nil
			}
			f, err := os.OpenFile(a.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteString(line)
			return err
		},
	}
}

// pageCache is the app's own cache of rendered pages, dropped by the
// paths of every revalidation event: a sink of its own, run by the worker
// after the built-in ones as a step of every submission, with its own
// attempts in the submission's status.
type pageCache struct {
	mu    sync.Mutex
	pages map[string][]byte
}

func (p *pageCache) sink() step.Sink {
	return step.Sink{
		Name: "page-cache",
		Purge: func(_ context.Context, ev submission.Event, _ string) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, path := range ev.Paths {
				delete(p.pages, path)
			}
			return nil
		},
	}
}
