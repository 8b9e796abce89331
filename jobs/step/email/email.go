package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/submission"
)

// cmp is s, or fallback when s is empty.

// emailConfig is the declaration of an email step. To is one address or a
// list; subject and body expand {field}, {id} and {action}.
type emailConfig struct {
	To      any    `json:"to"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
	From    string `json:"from"`
	// Limit caps the messages to a submitter's address ({field}
	// recipients): "5/1h" sends at most 5 an hour to one address.
	Limit string `json:"limit"`
}

func (c emailConfig) recipients() ([]string, error) {
	var list []string
	switch v := c.To.(type) {
	case string:
		list = []string{v}
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, errors.New("to: want addresses")
			}
			list = append(list, s)
		}
	default:
		return nil, errors.New("to: want an address or a list of addresses")
	}
	if len(list) == 0 {
		return nil, errors.New("to: want at least one address")
	}
	for i, a := range list {
		if _, ok := SubmitterPlaceholder(a); ok {
			continue // the submitter's address, filled in per submission
		}
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("to %q: %v", a, err)
		}
		list[i] = addr.Address
	}
	return list, nil
}

func (c emailConfig) check() error {
	to, err := c.recipients()
	if err != nil {
		return err
	}
	if c.Limit != "" {
		if _, err := parseRecipientLimit(c.Limit); err != nil {
			return err
		}
		if !slices.ContainsFunc(to, func(a string) bool { _, ok := SubmitterPlaceholder(a); return ok }) {
			return errors.New(`limit: only for a recipient naming the submitter's field, like to: "{email}"`)
		}
	}
	if c.Subject == "" {
		return errors.New("subject: required")
	}
	if c.From != "" {
		if _, err := mail.ParseAddress(c.From); err != nil {
			return fmt.Errorf("from %q: %v", c.From, err)
		}
	}
	return nil
}

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

// Mailer sends the email steps' messages. formq's are jobs/smtp's (SMTP,
// and the development mailer that logs instead); embedders may plug in
// their own (an email API, a test outbox). Send fails with a Permanent
// error for what no retry can fix.
type Mailer interface {
	Send(ctx context.Context, m *Email) error
}

// emailStep sends a notification about the submission.
func emailStep(mailer Mailer, limiter RecipientLimiter) StepType {
	return StepType{
		Timeout: 30 * time.Second,
		Check: func(cfg map[string]any) error {
			var c emailConfig
			if err := decodeConfig(cfg, &c); err != nil {
				return err
			}
			return c.check()
		},
		Run: func(ctx context.Context, r StepRun) error {
			var c emailConfig
			if err := decodeConfig(r.Config, &c); err != nil {
				return Permanent("bad configuration: %v", err)
			}
			to, err := c.recipients()
			if err != nil {
				return Permanent("bad configuration: %v", err)
			}
			if mailer == nil {
				return Permanent("email steps need FORMQ_SMTP_URL")
			}
			sub := r.Submission
			if to, err = submitters(to, sub); err != nil {
				return err
			}
			if c.Limit != "" {
				lim, err := parseRecipientLimit(c.Limit)
				if err != nil {
					return Permanent("bad configuration: %v", err)
				}
				if err := limitRecipients(ctx, limiter, lim, c, to, sub); err != nil {
					return err
				}
			}
			body := fill(c.Body, sub)
			if c.Body == "" {
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
