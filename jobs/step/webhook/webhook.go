package jobs

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
	"github.com/formq/formq/submission"
)

// ErrForbiddenAddress is a webhook connection refused because the address
// is loopback, private, link-local, a cloud metadata service or otherwise
// not public, while private addresses are not allowed.
var ErrForbiddenAddress = errors.New("jobs: webhook address is not public")

// specialPurpose is the deny list of code.dny.dev/ssrf, generated from the
// IANA special-purpose address registries: every IPv4 special range
// (private, loopback, link-local, shared, documentation, benchmarking,
// 6to4 relay, multicast, reserved) and, for IPv6, everything outside
// global unicast (2000::/3: loopback, IPv4-compatible and -translated
// forms, site-local, unique local, NAT64) plus the special ranges inside
// it (Teredo and the IETF block 2001::/23, documentation, 6to4 2002::/16).
// Ports and networks are not its business here: webhooks name their own.
var specialPurpose = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAnyNetwork())

// publicAddr reports whether a webhook may connect to addr. IPv4-mapped
// addresses are judged as the IPv4 address they carry.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsMulticast() || a.IsInterfaceLocalMulticast() || a.IsUnspecified() {
		return false
	}
	return specialPurpose.SafeAddr(a) == nil
}

// WebhookClient posts signed webhooks. Unless private addresses are
// allowed, it checks every address at dial time, after name resolution,
// so neither DNS tricks nor redirects reach internal services; redirects
// are never followed anyway (a 3xx is a failure).
type WebhookClient struct {
	client *http.Client
}

// NewWebhookClient builds a client; allowPrivate lets webhooks reach
// loopback and private addresses (FORMQ_WEBHOOK_ALLOW_PRIVATE, for local
// development and tests).
func NewWebhookClient(allowPrivate bool) *WebhookClient {
	allow := publicAddr
	if allowPrivate {
		allow = func(netip.Addr) bool { return true }
	}
	return newWebhookClient(allow)
}

func newWebhookClient(allow func(netip.Addr) bool) *WebhookClient {
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !allow(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would make the dial-time check meaningless
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return &WebhookClient{client: &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Delivery is one signed webhook message.
type Delivery struct {
	URL    string
	ID     string // webhook-id: the same on every retry of one delivery
	Secret []byte // the decoded signing key
	Body   []byte // JSON
	// Log, when set, is told of the attempt: time, URL without query,
	// HTTP status, latency, error.
	Log func(submission.DeliveryAttempt)
}

// Deliver posts a delivery signed per the Standard Webhooks spec. Only a
// 2xx answer succeeds. Refused addresses, redirects and 410 Gone are
// permanent failures; other failures are retried.
func (c *WebhookClient) Deliver(ctx context.Context, d Delivery) error {
	start := time.Now()
	status, err := c.deliver(ctx, d)
	if d.Log == nil {
		d.Log, _ = ctx.Value(deliveryLogKey{}).(func(submission.DeliveryAttempt))
	}
	if d.Log != nil {
		a := submission.DeliveryAttempt{At: start.UTC(), URL: redactURL(d.URL), WebhookID: d.ID, Status: status, LatencyMS: time.Since(start).Milliseconds()}
		if err != nil {
			a.Error = readable(err)
		}
		d.Log(a)
	}
	return err
}

// deliveryLogKey carries a step's delivery log to the deliveries made by
// code that does not see the StepRun (the sinks).
type deliveryLogKey struct{}

// withDeliveryLog makes Deliver log to fn the attempts made with ctx.
func withDeliveryLog(ctx context.Context, fn func(submission.DeliveryAttempt)) context.Context {
	if fn == nil {
		return ctx
	}
	return context.WithValue(ctx, deliveryLogKey{}, fn)
}

// deliver makes one attempt; status is the answer's, 0 when none came.
func (c *WebhookClient) deliver(ctx context.Context, d Delivery) (status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, Permanent("bad webhook URL: %v", err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "formq-webhook/1")
	req.Header.Set("webhook-id", d.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(d.Secret, d.ID, ts, d.Body))
	resp, err := c.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return 0, Permanent("webhook to %s refused: %s is not a public address (set FORMQ_WEBHOOK_ALLOW_PRIVATE=true to allow it in development)", redactURL(d.URL), forbiddenAddr(err))
		}
		return 0, fmt.Errorf("webhook to %s: %w", redactURL(d.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	status = resp.StatusCode
	switch {
	case status >= 200 && status < 300:
		return status, nil
	case status >= 300 && status < 400:
		return status, Permanent("webhook to %s answered %d: redirects are not followed; configure the final URL", redactURL(d.URL), status)
	case status == http.StatusGone:
		return status, Permanent("webhook to %s answered 410 Gone", redactURL(d.URL))
	default:
		return status, fmt.Errorf("webhook to %s answered %d", redactURL(d.URL), status)
	}
}

// Sign computes the webhook-signature header of the Standard Webhooks
// spec: v1, then base64 of HMAC-SHA256 over "id.timestamp.body".
func Sign(secret []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ParseSecret reads a signing secret: "whsec_" followed by base64, as the
// Standard Webhooks spec writes them, or any other string used as is.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "whsec_"); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(key) < 16 {
			return nil, errors.New("a whsec_ secret must be base64 of at least 16 bytes")
		}
		return key, nil
	}
	if len(s) < 16 {
		return nil, errors.New("a webhook secret must be at least 16 characters")
	}
	return []byte(s), nil
}

func forbiddenAddr(err error) string {
	_, addr, _ := strings.Cut(err.Error(), ErrForbiddenAddress.Error()+": ")
	if host, _, e := net.SplitHostPort(addr); e == nil {
		return host
	}
	return "the address"
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL drops credentials and the query, which may hold tokens, from
// URLs shown in errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// webhookConfig is the declaration of a webhook step.
type webhookConfig struct {
	URL       string `json:"url"`
	SecretEnv string `json:"secret_env"`
}

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (c webhookConfig) check() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want an http or https URL", c.URL)
	}
	if !envNamePattern.MatchString(c.SecretEnv) {
		return errors.New("secret_env: want the name of the environment variable holding the signing secret (whsec_...)")
	}
	return nil
}

// webhookStep posts the submission record to a URL.
func webhookStep(client *WebhookClient, getenv func(string) string) StepType {
	return StepType{
		Timeout: 15 * time.Second,
		Check: func(cfg map[string]any) error {
			var c webhookConfig
			if err := decodeConfig(cfg, &c); err != nil {
				return err
			}
			if err := c.check(); err != nil {
				return err
			}
			if getenv != nil {
				if getenv(c.SecretEnv) == "" {
					return fmt.Errorf("secret_env %s: not set in this environment (want a signing secret, whsec_...)", c.SecretEnv)
				}
				if _, err := ParseSecret(getenv(c.SecretEnv)); err != nil {
					return fmt.Errorf("secret_env %s: %v", c.SecretEnv, err)
				}
			}
			return nil
		},
		Run: func(ctx context.Context, r StepRun) error {
			var c webhookConfig
			if err := decodeConfig(r.Config, &c); err != nil {
				return Permanent("bad configuration: %v", err)
			}
			secret, err := ParseSecret(getenv(c.SecretEnv))
			if err != nil {
				return Permanent("secret_env %s: %v", c.SecretEnv, err)
			}
			body, err := recordJSON(r.Submission)
			if err != nil {
				return err
			}
			return client.Deliver(ctx, Delivery{URL: c.URL, ID: "msg_" + r.DeliveryID(), Secret: secret, Body: body, Log: r.LogDelivery})
		},
	}
}

// recordJSON is the submission record, as stored in S3 and sent to
// webhooks.
func recordJSON(sub *submission.Submission) ([]byte, error) {
	b, err := json.Marshal(sub)
	if err != nil {
		return nil, Permanent("encode the submission record: %v", err)
	}
	return b, nil
}
