package worker

import (
	"fmt"
	"log/slog"

	"github.com/formq/formq"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/images"
	"github.com/formq/formq/jobs/smtp"
	"github.com/formq/formq/uploads"
)

// buildSteps builds the built-in step types from the configuration, and
// the revalidation webhook when FORMQ_REVALIDATE_URL is set.
func buildSteps(cfg formq.Config, getenv func(string) string, store *uploads.Store, mailer jobs.Mailer, recipients jobs.RecipientLimiter, log *slog.Logger) (jobs.Steps, *jobs.Revalidator, error) {
	webhooks := jobs.NewWebhookClient(cfg.WebhookAllowPrivate)
	switch {
	case mailer != nil:
	case cfg.SMTPURL != "":
		m, err := smtp.New(cfg.SMTPURL)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: FORMQ_SMTP_URL %v", formq.ErrInvalid, err)
		}
		mailer = m
	case cfg.Development():
		mailer = smtp.NewLog(log.With("component", "mail"))
	}
	steps := jobs.Builtins(jobs.BuiltinDeps{Thumbnailer: images.NewWithLimits(store, int64(cfg.ThumbnailMaxDecode), int64(cfg.ThumbnailDecodeBudget)), Webhooks: webhooks, Mailer: mailer, Recipients: recipients, Getenv: getenv})
	var revalidate *jobs.Revalidator
	if cfg.RevalidateURL != "" {
		r, err := jobs.NewRevalidator(cfg.RevalidateURL, cfg.RevalidateSecret, webhooks)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: FORMQ_REVALIDATE_URL: %v", formq.ErrInvalid, err)
		}
		revalidate = r
	}
	if cfg.WebhookAllowPrivate {
		log.Warn("FORMQ_WEBHOOK_ALLOW_PRIVATE=true: webhooks may reach loopback and private addresses; never in production")
	}
	return steps, revalidate, nil
}

// buildSinks builds the revalidation sinks the configuration asks for:
// Cloudflare, Fastly, then one Next.js route per URL.
func buildSinks(cfg formq.Config) ([]jobs.Sink, error) {
	var sinks []jobs.Sink
	cdn := jobs.CDNClient()
	if cfg.CloudflareZoneID != "" {
		s, err := jobs.NewCloudflareSink(jobs.CloudflareConfig{
			APIURL: cfg.CloudflareAPIURL, Token: cfg.CloudflareAPIToken, ZoneID: cfg.CloudflareZoneID, SiteURL: cfg.SiteURL, Client: cdn,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: FORMQ_CLOUDFLARE_ZONE_ID: %v", formq.ErrInvalid, err)
		}
		sinks = append(sinks, s)
	}
	if cfg.FastlyServiceID != "" {
		s, err := jobs.NewFastlySink(jobs.FastlyConfig{
			APIURL: cfg.FastlyAPIURL, Key: cfg.FastlyAPIKey, ServiceID: cfg.FastlyServiceID, SiteURL: cfg.SiteURL, Soft: cfg.FastlySoftPurge, Client: cdn,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: FORMQ_FASTLY_SERVICE_ID: %v", formq.ErrInvalid, err)
		}
		sinks = append(sinks, s)
	}
	webhooks := jobs.NewWebhookClient(cfg.WebhookAllowPrivate)
	for _, u := range cfg.NextRevalidateURLs {
		s, err := jobs.NewNextSink(u, cfg.NextRevalidateSecret, webhooks)
		if err != nil {
			return nil, fmt.Errorf("%w: FORMQ_NEXT_REVALIDATE_URL: %v", formq.ErrInvalid, err)
		}
		sinks = append(sinks, s)
	}
	return sinks, nil
}
