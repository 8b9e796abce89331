package jobs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/submission"
)

// Mailer sends notification emails over SMTP (FORMQ_SMTP_URL:
// smtp://user:pass@host:587?from=forms@example.com, STARTTLS when the
// server offers it; smtps:// for implicit TLS). In development without a
// URL it writes the messages to the log instead, so demos work.
type Mailer struct {
	addr     string // host:port
	host     string
	implicit bool // smtps
	user     string
	pass     string
	from     string
	log      *slog.Logger // set: log messages instead of sending
}

// DefaultFrom is the sender when neither the URL nor the step names one.
const DefaultFrom = "formq@localhost"

// NewMailer reads an SMTP URL.
func NewMailer(raw string) (*Mailer, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("want a URL like smtp://user:pass@mail.example.com:587?from=forms@example.com")
	}
	m := &Mailer{host: u.Hostname(), implicit: u.Scheme == "smtps", from: DefaultFrom}
	port := u.Port()
	if port == "" {
		port = map[bool]string{true: "465", false: "587"}[m.implicit]
	}
	m.addr = net.JoinHostPort(m.host, port)
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	if f := u.Query().Get("from"); f != "" {
		if _, err := mail.ParseAddress(f); err != nil {
			return nil, fmt.Errorf("from %q: %v", f, err)
		}
		m.from = f
	}
	return m, nil
}

// NewLogMailer is the development mailer: messages go to the log.
func NewLogMailer(log *slog.Logger) *Mailer { return &Mailer{from: DefaultFrom, log: log} }

// Send delivers one message. Refusals with a 5xx reply are permanent;
// anything else is retried.
func (m *Mailer) Send(ctx context.Context, from string, to []string, msg []byte) error {
	if m.log != nil {
		m.log.InfoContext(ctx, "email (not sent: FORMQ_SMTP_URL is unset in development)", "from", from, "to", to, "message", string(msg))
		return nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if m.implicit {
		conn = tls.Client(conn, &tls.Config{ServerName: m.host})
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return smtpError(err)
	}
	defer c.Close()
	hostname, _ := os.Hostname()
	if err := c.Hello(cmp(hostname, "localhost")); err != nil {
		return smtpError(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !m.implicit {
		if err := c.StartTLS(&tls.Config{ServerName: m.host}); err != nil {
			return smtpError(err)
		}
	}
	if m.user != "" {
		if err := c.Auth(smtp.PlainAuth("", m.user, m.pass, m.host)); err != nil {
			return smtpError(err)
		}
	}
	if err := c.Mail(from); err != nil {
		return smtpError(err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return smtpError(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpError(err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpError(err)
	}
	if err := w.Close(); err != nil {
		return smtpError(err)
	}
	return smtpError(c.Quit())
}

func cmp(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func smtpError(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return Permanent("the mail server refused: %d %s", te.Code, te.Msg)
	}
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return nil
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
			from := cmp(c.From, mailer.from)
			return mailer.Send(ctx, from, to, composeEmail(r, from, to, c))
		},
	}
}

// composeEmail builds the message. Its Message-ID is the same on every
// attempt, so a mail system can drop a repeat after a crash.
func composeEmail(r StepRun, from string, to []string, c emailConfig) []byte {
	sub := r.Submission
	subject := oneLine(fill(c.Subject, sub))
	body := fill(c.Body, sub)
	if c.Body == "" {
		body = defaultEmailBody(sub)
	}
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from)
	h("To", strings.Join(to, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", subject))
	h("Date", time.Now().UTC().Format(time.RFC1123Z))
	h("Message-ID", "<"+r.DeliveryID()+"@formq>")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
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
