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
	gomail "github.com/wneessen/go-mail"
)

// cmp is s, or fallback when s is empty.
func cmp(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// emailConfig is the declaration of an email step. To is one address or a
// list; subject and body expand {field}, {id} and {action}.
type emailConfig struct {
	To      any    `json:"to"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
	From    string `json:"from"`
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
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("to %q: %v", a, err)
		}
		list[i] = addr.Address
	}
	return list, nil
}

func (c emailConfig) check() error {
	if _, err := c.recipients(); err != nil {
		return err
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

// emailStep sends a notification about the submission.
func emailStep(mailer *Mailer) StepType {
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
			msg, err := composeEmail(r, cmp(c.From, mailer.from), to, c)
			if err != nil {
				return Permanent("bad configuration: %v", err)
			}
			return mailer.Send(ctx, msg)
		},
	}
}

// composeEmail builds the message. go-mail writes the headers: addresses
// are parsed and re-written, the subject is RFC 2047-encoded (and cut to
// one line first), so no value can add a header. Its Message-ID is the
// same on every attempt, so a mail system can drop a repeat after a crash.
func composeEmail(r StepRun, from string, to []string, c emailConfig) (*gomail.Msg, error) {
	sub := r.Submission
	body := fill(c.Body, sub)
	if c.Body == "" {
		body = defaultEmailBody(sub)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("from %q: %w", from, err)
	}
	if err := msg.To(to...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	msg.Subject(oneLine(fill(c.Subject, sub)))
	msg.SetDateWithValue(time.Now().UTC())
	msg.SetMessageIDWithValue(r.DeliveryID() + "@formq")
	msg.SetBodyString(gomail.TypeTextPlain, body)
	return msg, nil
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
