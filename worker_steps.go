package formq

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/images"
	"github.com/formq/formq/uploads"
	"github.com/redis/go-redis/v9"
)

// workerSteps builds the step types of the worker and checks the actions
// file against them, secrets included, so a worker that cannot run a
// declared step stops at start.
func workerSteps(cfg Config, getenv Getenv, store *uploads.Store, log *slog.Logger) (jobs.Steps, *jobs.Revalidator, error) {
	webhooks := jobs.NewWebhookClient(cfg.WebhookAllowPrivate)
	var mailer *jobs.Mailer
	switch {
	case cfg.SMTPURL != "":
		m, err := jobs.NewMailer(cfg.SMTPURL)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: FORMQ_SMTP_URL %v", ErrInvalid, err)
		}
		mailer = m
	case cfg.Development():
		mailer = jobs.NewLogMailer(log.With("component", "mail"))
	}
	steps := jobs.Builtins(jobs.BuiltinDeps{Thumbnailer: images.New(store), Webhooks: webhooks, Mailer: mailer, Getenv: getenv})
	if _, err := actions.LoadFileWith(cfg.Actions, actions.ParseOptions{Steps: steps.Checks()}); err != nil {
		return nil, nil, err
	}
	var revalidate *jobs.Revalidator
	if cfg.RevalidateURL != "" {
		r, err := jobs.NewRevalidator(cfg.RevalidateURL, cfg.RevalidateSecret, webhooks)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: FORMQ_REVALIDATE_URL: %v", ErrInvalid, err)
		}
		revalidate = r
	}
	if cfg.WebhookAllowPrivate {
		log.Warn("FORMQ_WEBHOOK_ALLOW_PRIVATE=true: webhooks may reach loopback and private addresses; never in production")
	}
	return steps, revalidate, nil
}

// checkRedisDurability warns loudly when Redis may lose queued tasks:
// without appendonly a restart drops what was written since the last
// snapshot, and an eviction policy other than noeviction deletes tasks
// under memory pressure. Managed Redis may refuse CONFIG; that is said too.
func checkRedisDurability(ctx context.Context, rdb *redis.Client, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	want := map[string]string{"appendonly": "yes", "maxmemory-policy": "noeviction"}
	for name, good := range want {
		got, err := rdb.ConfigGet(cctx, name).Result()
		if err != nil {
			log.Warn("could not check the Redis setting "+name+"; make sure it is "+good+" or queued submissions can be lost", "err", err)
			continue
		}
		if v := got[name]; !strings.EqualFold(v, good) {
			log.Warn(fmt.Sprintf("WARNING: Redis %s is %q, not %q: queued submissions can be LOST (on restart or under memory pressure). Set %s %s in redis.conf.", name, v, good, name, good),
				"setting", name, "value", v, "want", good)
		}
	}
}
