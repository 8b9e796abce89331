package jobs

import (
	"errors"
	"fmt"

	"github.com/formq/formq/submission"
)

// BuiltinDeps are what the built-in steps need. The API only checks the
// actions file and passes none; the worker passes all.
type BuiltinDeps struct {
	Thumbnailer Thumbnailer    // thumbnail; nil: thumbnail steps cannot run
	Webhooks    *WebhookClient // webhook
	Mailer      Mailer         // email; nil: email steps cannot run
	// Recipients counts autoresponder messages per address (an email
	// step's limit); nil sends without counting.
	Recipients RecipientLimiter
	// Getenv reads webhook secrets. When set, the checks also require
	// every secret_env to hold a valid secret and an email step to have a
	// mailer, so a worker missing them stops at start.
	Getenv func(string) string
}

// Builtins are the built-in step types: thumbnail, webhook and email.
// Register custom ones on the result.
func Builtins(d BuiltinDeps) Steps {
	email := emailStep(d.Mailer, d.Recipients)
	if d.Getenv != nil && d.Mailer == nil {
		check := email.Check
		email.Check = func(cfg map[string]any) error {
			// One line: a problem is printed as file:line: text.
			if err := check(cfg); err != nil {
				return fmt.Errorf("%v; email steps need FORMQ_SMTP_URL", err)
			}
			return errors.New("email steps need FORMQ_SMTP_URL")
		}
	}
	return Steps{
		submission.ThumbnailStep: thumbnailStep(d.Thumbnailer),
		"webhook":                webhookStep(d.Webhooks, d.Getenv),
		"email":                  email,
	}
}
