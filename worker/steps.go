package worker

import (
	"fmt"
	"log/slog"

	"github.com/formq/formq"
	"github.com/formq/formq/jobs/sink/cdn"
	"github.com/formq/formq/jobs/sink/next"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/jobs/step/email"
	"github.com/formq/formq/jobs/step/email/smtp"
	"github.com/formq/formq/jobs/step/notify"
	"github.com/formq/formq/jobs/step/thumbnail"
	"github.com/formq/formq/jobs/step/thumbnail/images"
	"github.com/formq/formq/jobs/step/webhook"
	"github.com/formq/formq/uploads"
)

// buildMailer is the mailer of email steps and digests: the embedder's,
// else SMTP at FORMQ_SMTP_URL, else in development the log; nil when
// there is none.
func buildMailer(cfg formq.Config, mailer email.Mailer, log *slog.Logger) (email.Mailer, error) {
	switch {
	case mailer != nil:
	case cfg.SMTPURL != "":
		m, err := smtp.New(cfg.SMTPURL)
		if err != nil {
			return nil, fmt.Errorf("%w: FORMQ_SMTP_URL %v", formq.ErrInvalid, err)
		}
		return m, nil
	case cfg.Development():
		return smtp.NewLog(log.With("component", "mail")), nil
	}
	return mailer, nil
}

// inboxURL is the inbox pages' address for links in messages; empty
// without FORMQ_PUBLIC_URL.
func inboxURL(cfg formq.Config) string {
	if cfg.PublicURL == "" {
		return ""
	}
	return cfg.PublicURL + "/admin/inbox"
}

// buildSteps builds the built-in step types from the configuration,
// registered through the step API as an embedder's are.
func buildSteps(cfg formq.Config, getenv func(string) string, store *uploads.Store, webhooks *webhook.Client, mailer email.Mailer, recipients email.RecipientLimiter, log *slog.Logger) (step.Steps, error) {
	mail := email.Step(mailer, recipients)
	if mailer == nil {
		mail = builtin.NeedsMailer(mail)
	}
	steps := step.Steps{}
	steps.Register(builtin.Thumbnail, thumbnail.Step(images.NewWithLimits(store, int64(cfg.ThumbnailMaxDecode), int64(cfg.ThumbnailDecodeBudget))))
	steps.Register(builtin.Webhook, webhook.Step(webhooks, getenv, store))
	steps.Register(builtin.Email, mail)
	steps.Register(builtin.Notify, notify.Step(webhooks, notify.Config{InboxURL: inboxURL(cfg), Getenv: getenv}))
	if cfg.WebhookAllowPrivate {
		log.Warn("FORMQ_WEBHOOK_ALLOW_PRIVATE=true: webhooks may reach loopback and private addresses; never in production")
	}
	return steps, nil
}

// buildSinks builds the sinks the configuration asks for, in the order
// they run: the revalidation webhook, Cloudflare, Fastly, then one
// Next.js route per URL.
func buildSinks(cfg formq.Config, webhooks *webhook.Client) ([]step.Sink, error) {
	var sinks []step.Sink
	if cfg.RevalidateURL != "" {
		s, err := next.NewRevalidate(cfg.RevalidateURL, cfg.RevalidateSecret, webhooks)
		if err != nil {
			return nil, fmt.Errorf("%w: FORMQ_REVALIDATE_URL: %v", formq.ErrInvalid, err)
		}
		sinks = append(sinks, s)
	}
	client := cdn.Client()
	if cfg.CloudflareZoneID != "" {
		s, err := cdn.NewCloudflare(cdn.CloudflareConfig{
			APIURL: cfg.CloudflareAPIURL, Token: cfg.CloudflareAPIToken, ZoneID: cfg.CloudflareZoneID, SiteURL: cfg.SiteURL, Client: client,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: FORMQ_CLOUDFLARE_ZONE_ID: %v", formq.ErrInvalid, err)
		}
		sinks = append(sinks, s)
	}
	if cfg.FastlyServiceID != "" {
		s, err := cdn.NewFastly(cdn.FastlyConfig{
			APIURL: cfg.FastlyAPIURL, Key: cfg.FastlyAPIKey, ServiceID: cfg.FastlyServiceID, SiteURL: cfg.SiteURL, Soft: cfg.FastlySoftPurge, Client: client,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: FORMQ_FASTLY_SERVICE_ID: %v", formq.ErrInvalid, err)
		}
		sinks = append(sinks, s)
	}
	for _, u := range cfg.NextRevalidateURLs {
		s, err := next.NewSink(u, cfg.NextRevalidateSecret, webhooks)
		if err != nil {
			return nil, fmt.Errorf("%w: FORMQ_NEXT_REVALIDATE_URL: %v", formq.ErrInvalid, err)
		}
		sinks = append(sinks, s)
	}
	return sinks, nil
}
