// Package webhook is the built-in webhook step: it posts the submission
// record, signed per the Standard Webhooks spec, to the step's URL, and
// refuses, at dial time, addresses that are not public. Its Client also
// posts the revalidation webhooks of jobs/sink/next. Only the worker
// links it (with code.dny.dev/ssrf); the API checks webhook steps with
// jobs/step/builtin.
package webhook

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
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
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

// Client posts signed webhooks. Unless private addresses are
// allowed, it checks every address at dial time, after name resolution,
// so neither DNS tricks nor redirects reach internal services; redirects
// are never followed anyway (a 3xx is a failure).
type Client struct {
	client *http.Client
}

// NewClient builds a client; allowPrivate lets webhooks reach
// loopback and private addresses (FORMQ_WEBHOOK_ALLOW_PRIVATE, for local
// development and tests).
func NewClient(allowPrivate bool) *Client {
	allow := publicAddr
	if allowPrivate {
		allow = func(netip.Addr) bool { return true }
	}
	return newClient(allow)
}

func newClient(allow func(netip.Addr) bool) *Client {
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
	return &Client{client: &http.Client{
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
func (c *Client) Deliver(ctx context.Context, d Delivery) error {
	_, err := c.exchange(ctx, d, false)
	return err
}

// Exchange posts a delivery as Deliver does and returns the receiver's
// answer when it is one the sender reads: a 2xx, or a 422 (the app's
// refusal, which is then not an error here).
func (c *Client) Exchange(ctx context.Context, d Delivery) (*Reply, error) {
	return c.exchange(ctx, d, true)
}

// Reply is a receiver's answer: its status, content type and body (at
// most MaxReply bytes; Truncated when there was more).
type Reply struct {
	Status      int
	ContentType string
	Body        []byte
	Truncated   bool
}

// MaxReply is the most of a receiver's answer formq reads.
const MaxReply = 64 << 10

func (c *Client) exchange(ctx context.Context, d Delivery, answers bool) (*Reply, error) {
	start := time.Now()
	reply, err := c.deliver(ctx, d, answers)
	status := 0
	if reply != nil {
		status = reply.Status
	}
	if d.Log == nil {
		d.Log = step.DeliveryLog(ctx)
	}
	if d.Log != nil {
		a := submission.DeliveryAttempt{At: start.UTC(), URL: step.RedactURL(d.URL), WebhookID: d.ID, Status: status, LatencyMS: time.Since(start).Milliseconds()}
		if err != nil {
			a.Error = step.ErrorText(err)
		}
		d.Log(a)
	}
	return reply, err
}

// deliver makes one attempt; the reply is nil when no answer came. With
// answers, a 422 is the receiver's refusal for the caller to read, not an
// error.
func (c *Client) deliver(ctx context.Context, d Delivery, answers bool) (*Reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return nil, step.Permanent("bad webhook URL: %v", err)
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
			return nil, step.Permanent("webhook to %s refused: %s is not a public address (set FORMQ_WEBHOOK_ALLOW_PRIVATE=true to allow it in development)", step.RedactURL(d.URL), forbiddenAddr(err))
		}
		return nil, fmt.Errorf("webhook to %s: %w", step.RedactURL(d.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	reply := &Reply{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type")}
	status := reply.Status
	if answers && (status == http.StatusUnprocessableEntity || status >= 200 && status < 300) {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxReply+1))
		if rerr != nil {
			return reply, fmt.Errorf("webhook to %s answered %d, then the answer broke off: %w", step.RedactURL(d.URL), status, rerr)
		}
		reply.Body, reply.Truncated = body, len(body) > MaxReply
		if reply.Truncated {
			reply.Body = body[:MaxReply]
		}
		return reply, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxReply))
	switch {
	case status >= 200 && status < 300:
		return reply, nil
	case status >= 300 && status < 400:
		return reply, step.Permanent("webhook to %s answered %d: redirects are not followed; configure the final URL", step.RedactURL(d.URL), status)
	case status == http.StatusGone:
		return reply, step.Permanent("webhook to %s answered 410 Gone", step.RedactURL(d.URL))
	default:
		return reply, fmt.Errorf("webhook to %s answered %d", step.RedactURL(d.URL), status)
	}
}

// PostJSON posts a JSON body, unsigned, through the same address guard:
// for services whose secret is their URL (chat incoming webhooks). It
// answers the HTTP status for the caller to judge (redirects are not
// followed: a 3xx is answered as it is), logging the attempt like a
// delivery.
func (c *Client) PostJSON(ctx context.Context, url string, body []byte, log func(submission.DeliveryAttempt)) (int, error) {
	start := time.Now()
	status, err := c.postJSON(ctx, url, body)
	if log == nil {
		log = step.DeliveryLog(ctx)
	}
	if log != nil {
		a := submission.DeliveryAttempt{At: start.UTC(), URL: step.RedactURL(url), Status: status, LatencyMS: time.Since(start).Milliseconds()}
		if err != nil {
			a.Error = step.ErrorText(err)
		}
		log(a)
	}
	return status, err
}

func (c *Client) postJSON(ctx context.Context, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, step.Permanent("bad URL: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "formq-webhook/1")
	resp, err := c.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return 0, step.Permanent("post to %s refused: %s is not a public address (set FORMQ_WEBHOOK_ALLOW_PRIVATE=true to allow it in development)", step.RedactURL(url), forbiddenAddr(err))
		}
		return 0, fmt.Errorf("post to %s: %w", step.RedactURL(url), unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxReply))
	return resp.StatusCode, nil
}

// Sign computes the webhook-signature header of the Standard Webhooks
// spec: v1, then base64 of HMAC-SHA256 over "id.timestamp.body".
func Sign(secret []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
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

// Step is the webhook step type: it posts the submission record to the
// step's URL with client, signed with the secret its secret_env names,
// read with getenv (os.Getenv when nil), each file with a download link
// from links valid for the step's file_url_ttl (no links when links is
// nil). Its check is builtin.CheckWebhook(getenv), so a process missing a
// secret stops at start.
func Step(client *Client, getenv func(string) string, links FileLinks) step.Type {
	if getenv == nil {
		getenv = os.Getenv
	}
	return step.Type{
		Timeout: 15 * time.Second,
		Check:   builtin.CheckWebhook(getenv),
		Run: func(ctx context.Context, r step.Run) error {
			var c builtin.WebhookSettings
			if err := step.Decode(r.Config, &c); err != nil {
				return step.Permanent("bad configuration: %v", err)
			}
			secret, err := builtin.ParseSecret(getenv(c.SecretEnv))
			if err != nil {
				return step.Permanent("secret_env %s: %v", c.SecretEnv, err)
			}
			body, err := payloadJSON(ctx, r.Submission, links, c.FileURLValidity())
			if err != nil {
				return err
			}
			reply, err := client.Exchange(ctx, Delivery{URL: c.URL, ID: "msg_" + r.DeliveryID(), Secret: secret, Body: body, Log: r.LogDelivery})
			if err != nil {
				return err
			}
			return readAnswer(r, c.URL, reply)
		},
	}
}

// recordJSON is the submission record, as stored in S3 and sent to
// webhooks.
func recordJSON(sub *submission.Submission) ([]byte, error) {
	b, err := json.Marshal(sub)
	if err != nil {
		return nil, step.Permanent("encode the submission record: %v", err)
	}
	return b, nil
}
