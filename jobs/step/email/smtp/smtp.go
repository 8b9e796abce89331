// Package smtp sends the email step's messages over SMTP with go-mail,
// or, in development, writes them to the log. Only the worker links it.
package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"time"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/email"
	gomail "github.com/wneessen/go-mail"
)

// Mailer sends notification emails over SMTP with go-mail. FORMQ_SMTP_URL
// names the server: smtp://user:pass@host:587?from=forms@example.com uses
// STARTTLS when the server offers it (?starttls=required: only then);
// smtps:// uses implicit TLS. With a user it authenticates with the best
// mechanism the server offers, PLAIN and LOGIN only over TLS. In
// development without a URL it writes the messages to the log instead, so
// demos work.
type Mailer struct {
	host     string
	port     int
	implicit bool // smtps
	starttls gomail.TLSPolicy
	user     string
	pass     string
	from     string
	timeout  time.Duration  // per SMTP command
	roots    *x509.CertPool // nil: the system's
	log      *slog.Logger   // set: log messages instead of sending
}

// DefaultFrom is the sender when neither the URL nor the step names one.
const DefaultFrom = "formq@localhost"

// smtpTimeout bounds each SMTP command; the step's context bounds the
// whole delivery.
const smtpTimeout = 15 * time.Second

const mailerURLForm = "want a URL like smtp://user:pass@mail.example.com:587?from=forms@example.com"

// New reads an SMTP URL. Its options are from (the default sender)
// and, for smtp://, starttls=opportunistic (the default) or required.
func New(raw string) (*Mailer, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New(mailerURLForm)
	}
	m := &Mailer{host: u.Hostname(), implicit: u.Scheme == "smtps", starttls: gomail.TLSOpportunistic,
		from: DefaultFrom, timeout: smtpTimeout}
	m.port = map[bool]int{true: 465, false: 587}[m.implicit]
	if p := u.Port(); p != "" {
		if m.port, err = strconv.Atoi(p); err != nil || m.port < 1 || m.port > 65535 {
			return nil, fmt.Errorf("port %q: %s", p, mailerURLForm)
		}
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	for k, v := range u.Query() {
		switch {
		case k == "from":
			if _, err := mail.ParseAddress(v[0]); err != nil {
				return nil, fmt.Errorf("from %q: %v", v[0], err)
			}
			m.from = v[0]
		case k == "starttls" && m.implicit:
			return nil, errors.New("starttls: not with smtps://, which is TLS from the start")
		case k == "starttls" && v[0] == "required":
			m.starttls = gomail.TLSMandatory
		case k == "starttls" && v[0] == "opportunistic":
			m.starttls = gomail.TLSOpportunistic
		case k == "starttls":
			return nil, fmt.Errorf("starttls %q: want opportunistic or required", v[0])
		default:
			return nil, fmt.Errorf("unknown option %q: want from or starttls", k)
		}
	}
	return m, nil
}

// NewLog is the development mailer: messages go to the log.
func NewLog(log *slog.Logger) *Mailer { return &Mailer{from: DefaultFrom, log: log} }

// Send delivers one message. Refusals with a 5xx reply are permanent;
// anything else is retried. Cancelling ctx ends the delivery at once.
func (m *Mailer) Send(ctx context.Context, e *email.Email) error {
	msg, err := compose(e, cmp(e.From, m.from))
	if err != nil {
		return step.Permanent("bad configuration: %v", err)
	}
	if m.log != nil {
		var b bytes.Buffer
		if _, err := msg.WriteTo(&b); err != nil {
			return step.Permanent("compose: %v", err)
		}
		m.log.InfoContext(ctx, "email (not sent: FORMQ_SMTP_URL is unset in development)",
			"from", msg.GetFromString(), "to", msg.GetToString(), "message", b.String())
		return nil
	}
	var conn net.Conn
	stop := func() bool { return false }
	defer func() {
		stop()
		if conn != nil {
			conn.Close() // go-mail leaves it open when STARTTLS or AUTH fail
		}
	}()
	tlsConfig := &tls.Config{ServerName: m.host, RootCAs: m.roots, MinVersion: tls.VersionTLS12}
	// go-mail bounds each command by its timeout but watches ctx only
	// while dialing: close the connection when ctx ends instead.
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var err error
		if conn, err = new(net.Dialer).DialContext(dctx, network, addr); err != nil {
			return nil, err
		}
		c := conn
		stop = context.AfterFunc(ctx, func() { c.Close() })
		if !m.implicit {
			return conn, nil
		}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(dctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
	// For smtps the dialer did the TLS handshake, and the policy is
	// opportunistic: go-mail then reads the session's TLS state (its own
	// smtps mode, WithSSL, would take a dialer's session for unencrypted
	// and never use PLAIN or LOGIN), and never upgrades twice, as servers
	// must not offer STARTTLS inside TLS (RFC 3207, 4.2).
	opts := []gomail.Option{
		gomail.WithPort(m.port), gomail.WithTimeout(m.timeout), gomail.WithTLSConfig(tlsConfig),
		gomail.WithDialContextFunc(dial), gomail.WithTLSPolicy(m.starttls),
		// A fresh connection needs no NOOP before and no RSET after.
		gomail.WithoutNoop(), gomail.WithoutRset(),
	}
	if m.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.user), gomail.WithPassword(m.pass))
	}
	c, err := gomail.NewClient(m.host, opts...)
	if err != nil {
		return step.Permanent("smtp: %v", err)
	}
	err = c.DialAndSendWithContext(ctx, msg)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("smtp %s: %w (%v)", c.ServerAddr(), context.Cause(ctx), err)
	case errors.Is(err, gomail.ErrNoSupportedAuthDiscovered):
		return fmt.Errorf("smtp %s: %w (PLAIN and LOGIN are used only over TLS)", c.ServerAddr(), err)
	}
	return smtpError(c.ServerAddr(), err)
}

// smtpError makes a 5xx reply a permanent failure, whatever the step it
// came at (greeting, AUTH, MAIL, RCPT, DATA).
func smtpError(addr string, err error) error {
	if err == nil {
		return nil
	}
	code := 0
	var se *gomail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se):
		code = se.ErrorCode()
	case errors.As(err, &te):
		code = te.Code
	}
	if code >= 500 {
		return step.Permanent("the mail server refused: %v", err)
	}
	return fmt.Errorf("smtp %s: %w", addr, err)
}

// compose builds the message. go-mail writes the headers: addresses
// are parsed and re-written, the subject is RFC 2047-encoded (and cut to
// one line first), so no value can add a header. Its Message-ID is the
// same on every attempt, so a mail system can drop a repeat after a crash.
func compose(e *email.Email, from string) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("from %q: %w", from, err)
	}
	if err := msg.To(e.To...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	msg.Subject(e.Subject)
	msg.SetDateWithValue(e.Date)
	msg.SetMessageIDWithValue(e.MessageID)
	msg.SetBodyString(gomail.TypeTextPlain, e.Body)
	return msg, nil
}

func cmp(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

var _ email.Mailer = (*Mailer)(nil)
