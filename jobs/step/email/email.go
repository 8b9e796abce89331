// Package email is the built-in email step: a notification about the
// submission, or an autoresponder to the submitter's address under a
// per-recipient limit, sent by a Mailer (jobs/step/email/smtp's, or an
// embedder's own). Only the worker links it; the API checks email steps
// with jobs/step/builtin.
package email

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/submission"
)

// Email is one message of an email step. The Mailer writes its headers
// safely (addresses parsed and re-written, the subject encoded), so no
// value can add a header.
type Email struct {
	From    string // the step's sender; empty: the mailer's default
	To      []string
	Subject string // one line
	Body    string // plain text
	// MessageID is the same on every attempt of the step, so a mail
	// system can drop a repeat after a crash.
	MessageID string
	Date      time.Time
}

// Mailer sends the email steps' messages. formq's are jobs/step/email/smtp's (SMTP,
// and the development mailer that logs instead); embedders may plug in
// their own (an email API, a test outbox). Send fails with a Permanent
// error for what no retry can fix.
type Mailer interface {
	Send(ctx context.Context, m *Email) error
}

// Step is the email step type: it sends a notification about the
// submission with mailer; limiter counts the messages to submitters'
// addresses (a step's limit), nil sends without counting. A nil mailer
// fails every email step for good; wrap the type in builtin.NeedsMailer
// to stop such a process at start instead.
func Step(mailer Mailer, limiter RecipientLimiter) step.Type {
	return step.Type{
		Timeout: 30 * time.Second,
		Check:   builtin.CheckEmail,
		Run: func(ctx context.Context, r step.Run) error {
			var c builtin.EmailSettings
			if err := step.Decode(r.Config, &c); err != nil {
				return step.Permanent("bad configuration: %v", err)
			}
			to, err := c.Recipients()
			if err != nil {
				return step.Permanent("bad configuration: %v", err)
			}
			if mailer == nil {
				return step.Permanent("email steps need FORMQ_SMTP_URL")
			}
			sub := r.Submission
			if to, err = submitters(to, sub); err != nil {
				return err
			}
			if c.Limit != "" {
				lim, err := builtin.ParseRecipientLimit(c.Limit)
				if err != nil {
					return step.Permanent("bad configuration: %v", err)
				}
				if err := limitRecipients(ctx, limiter, lim, c, to, sub); err != nil {
					return err
				}
			}
			body := fill(c.Body, sub)
			switch {
			case c.Body != "":
			case mailsSubmitter(c):
				body = receiptBody(sub)
			default:
				body = defaultEmailBody(sub)
			}
			return mailer.Send(ctx, &Email{
				From: c.From, To: to, Subject: oneLine(fill(c.Subject, sub)), Body: body,
				MessageID: r.DeliveryID() + "@formq", Date: time.Now().UTC(),
			})
		},
	}
}

// fill expands {field}, {id} and {action} from the submission.
func fill(tmpl string, sub *submission.Submission) string {
	pairs := []string{"{id}", sub.ID, "{action}", sub.Action}
	for k, v := range sub.Values {
		pairs = append(pairs, "{"+k+"}", fmt.Sprint(v))
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// mailsSubmitter reports whether a step mails the address a visitor
// typed (a recipient naming a field).
func mailsSubmitter(c builtin.EmailSettings) bool {
	raw, _ := c.Recipients()
	return slices.ContainsFunc(raw, func(t string) bool { _, ok := builtin.SubmitterPlaceholder(t); return ok })
}

// receiptBody is the default text of an autoresponder: that the
// submission arrived, and nothing of it (whoever typed the address may
// not be its owner; storage keys are formq's business).
func receiptBody(sub *submission.Submission) string {
	return fmt.Sprintf("We received your submission %s to %s at %s.\n", sub.ID, sub.Action, sub.ReceivedAt.UTC().Format(time.RFC3339))
}

func defaultEmailBody(sub *submission.Submission) string {
	var b strings.Builder
	fmt.Fprintf(&b, "New submission %s to %s at %s.\n\n", sub.ID, sub.Action, sub.ReceivedAt.UTC().Format(time.RFC3339))
	keys := make([]string, 0, len(sub.Values))
	for k := range sub.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %v\n", k, sub.Values[k])
	}
	for _, f := range sub.Files {
		fmt.Fprintf(&b, "file %s: %s (%d bytes, %s)\n", f.Field, f.Filename, f.Size, f.Key)
	}
	return b.String()
}
