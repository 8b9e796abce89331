// Package builtin declares formq's built-in step types (thumbnail,
// webhook, email, notify) by their settings: the names, the settings each takes
// and their checks, without the code that runs them. The API checks
// actions files with Checks and so links none of the implementations (no
// webhook client, SMTP or image decoding); the implementation packages
// (jobs/step/webhook, email, thumbnail, notify) decode the same settings with the
// same checks.
package builtin

import (
	"errors"
	"fmt"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
)

// The names of the built-in step types in actions files.
const (
	Thumbnail = submission.ThumbnailStep
	Webhook   = "webhook"
	Email     = "email"
)

// Checks are the built-in step types with their checks and no Run: what a
// process checking actions files needs. getenv, when set, also requires
// every webhook step's secret_env to hold a valid secret (CheckWebhook)
// and every notify step's url_env a URL (CheckNotify).
// Register custom step types on the result.
func Checks(getenv func(string) string) step.Steps {
	return step.Steps{
		Thumbnail: {Check: CheckThumbnail},
		Webhook:   {Check: CheckWebhook(getenv)},
		Email:     {Check: CheckEmail},
		Notify:    {Check: CheckNotify(getenv)},
	}
}

// NeedsMailer wraps an email step type whose process has no mailer: its
// check fails, so a worker that could not send the mail stops at start.
func NeedsMailer(t step.Type) step.Type {
	check := t.Check
	t.Check = func(cfg map[string]any) error {
		// One line: a problem is printed as file:line: text.
		if check != nil {
			if err := check(cfg); err != nil {
				return fmt.Errorf("%v; email steps need FORMQ_SMTP_URL", err)
			}
		}
		return errors.New("email steps need FORMQ_SMTP_URL")
	}
	return t
}
