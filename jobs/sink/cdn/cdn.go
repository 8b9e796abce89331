// Package cdn is the built-in CDN sinks: every revalidation event purges
// the CDN's cache by tag and by URL, through Cloudflare's or Fastly's API
// (FORMQ_CLOUDFLARE_*, FORMQ_FASTLY_*). Only the worker links it.
package cdn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
)

// Limits of the providers' purge calls: Cloudflare takes up to 30 URLs or
// tags per request, Fastly up to 256 surrogate keys.
const (
	cloudflareBatch = 30
	fastlyBatch     = 256
)

// Client is the HTTP client of the CDN sinks. Their API URLs come from
// the operator's configuration, not from the actions file, so they are
// not guarded like webhooks; redirects are never followed.
func Client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CloudflareConfig configures the Cloudflare sink (FORMQ_CLOUDFLARE_*).
type CloudflareConfig struct {
	APIURL  string // e.g. https://api.cloudflare.com/client/v4
	Token   string // API token with Cache Purge permission
	ZoneID  string
	SiteURL string // turns event paths into the absolute URLs Cloudflare purges
	Client  *http.Client
}

// NewCloudflare is the Cloudflare sink: it purges every event's tags by cache tag and its paths
// by URL: POST {api}/zones/{zone}/purge_cache with {"tags": [...]} and
// {"files": [...]}, one request per kind and per batch of 30.
func NewCloudflare(c CloudflareConfig) (step.Sink, error) {
	base, err := apiBase(c.APIURL)
	if err != nil {
		return step.Sink{}, fmt.Errorf("cloudflare API URL: %w", err)
	}
	if c.Token == "" || c.ZoneID == "" {
		return step.Sink{}, errors.New("cloudflare: an API token and a zone id are required")
	}
	site, err := siteBase(c.SiteURL)
	if err != nil {
		return step.Sink{}, err
	}
	client := c.Client
	if client == nil {
		client = Client()
	}
	endpoint := base + "/zones/" + url.PathEscape(c.ZoneID) + "/purge_cache"
	post := func(ctx context.Context, key string, body any) error {
		b, err := json.Marshal(body)
		if err != nil {
			return step.Permanent("encode the purge: %v", err)
		}
		return callCDN(ctx, client, "cloudflare", http.MethodPost, endpoint, b, key, func(h http.Header) {
			h.Set("Authorization", "Bearer "+c.Token)
			h.Set("Content-Type", "application/json")
		}, cloudflareAnswer)
	}
	return step.Sink{
		Name: "cloudflare", Timeout: 30 * time.Second,
		Purge: func(ctx context.Context, ev submission.Event, key string) error {
			files, err := absoluteURLs(site, ev.Paths)
			if err != nil {
				return err
			}
			for n, batch := range batches(ev.Tags, cloudflareBatch) {
				if err := post(ctx, key+".tags."+strconv.Itoa(n), map[string][]string{"tags": batch}); err != nil {
					return err
				}
			}
			for n, batch := range batches(files, cloudflareBatch) {
				if err := post(ctx, key+".files."+strconv.Itoa(n), map[string][]string{"files": batch}); err != nil {
					return err
				}
			}
			return nil
		},
	}, nil
}

// cloudflareAnswer checks the API's envelope: {"success": true, ...}. A
// 2xx with "success": false is Cloudflare refusing the purge (a bad URL,
// a tag too long, a zone the token may not purge): sending it again gets
// the same answer, so it fails for good with Cloudflare's messages.
func cloudflareAnswer(body []byte) error {
	var env struct {
		Success bool `json:"success"`
		Errors  []struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("cloudflare answered a body that is not its JSON envelope: %v", err)
	}
	if !env.Success {
		msgs := make([]string, 0, len(env.Errors))
		for _, e := range env.Errors {
			msgs = append(msgs, fmt.Sprintf("%d %s", e.Code, e.Message))
		}
		if len(msgs) == 0 {
			msgs = append(msgs, "no error given")
		}
		return step.Permanent("cloudflare refused the purge: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// FastlyConfig configures the Fastly sink (FORMQ_FASTLY_*).
type FastlyConfig struct {
	APIURL    string // e.g. https://api.fastly.com
	Key       string // API token with purge rights
	ServiceID string
	// SiteURL, when set, turns event paths into the absolute URLs purged
	// one by one; without it only tags are purged.
	SiteURL string
	// Soft marks purged objects stale instead of removing them
	// (Fastly-Soft-Purge: 1), so Fastly may serve them while it fetches
	// the new version.
	Soft   bool
	Client *http.Client
}

// NewFastly is the Fastly sink: it purges every event's tags as surrogate keys, POST
// {api}/service/{id}/purge with the keys in the Surrogate-Key header,
// batches of 256; and, with a site URL, each of its paths by URL, POST
// {api}/purge/{host}{path} (Fastly purges one URL per request).
func NewFastly(c FastlyConfig) (step.Sink, error) {
	base, err := apiBase(c.APIURL)
	if err != nil {
		return step.Sink{}, fmt.Errorf("fastly API URL: %w", err)
	}
	if c.Key == "" || c.ServiceID == "" {
		return step.Sink{}, errors.New("fastly: an API key and a service id are required")
	}
	var site string
	if c.SiteURL != "" {
		if site, err = siteBase(c.SiteURL); err != nil {
			return step.Sink{}, err
		}
	}
	client := c.Client
	if client == nil {
		client = Client()
	}
	headers := func(more func(http.Header)) func(http.Header) {
		return func(h http.Header) {
			h.Set("Fastly-Key", c.Key)
			h.Set("Accept", "application/json")
			if c.Soft {
				h.Set("Fastly-Soft-Purge", "1")
			}
			if more != nil {
				more(h)
			}
		}
	}
	endpoint := base + "/service/" + url.PathEscape(c.ServiceID) + "/purge"
	return step.Sink{
		Name: "fastly", Timeout: 30 * time.Second,
		Purge: func(ctx context.Context, ev submission.Event, key string) error {
			for _, t := range ev.Tags {
				if t == "" || strings.ContainsAny(t, " \t\r\n") || len(t) > 1024 {
					return step.Permanent("fastly: tag %q cannot be a surrogate key (no spaces, at most 1024 bytes)", t)
				}
			}
			var urls []string
			if site != "" {
				abs, err := absoluteURLs(site, ev.Paths)
				if err != nil {
					return err
				}
				for _, u := range abs {
					urls = append(urls, base+"/purge/"+strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://"))
				}
			}
			for n, batch := range batches(ev.Tags, fastlyBatch) {
				err := callCDN(ctx, client, "fastly", http.MethodPost, endpoint, nil, key+".keys."+strconv.Itoa(n), headers(func(h http.Header) {
					h.Set("Surrogate-Key", strings.Join(batch, " "))
				}), nil)
				if err != nil {
					return err
				}
			}
			for n, u := range urls {
				if err := callCDN(ctx, client, "fastly", http.MethodPost, u, nil, key+".urls."+strconv.Itoa(n), headers(nil), nil); err != nil {
					return err
				}
			}
			return nil
		},
	}, nil
}

// callCDN makes one purge call, in a client span of its own. 2xx
// succeeds (check, when set, reads the body); 429 and 5xx are retried;
// other answers (a refused token, a bad request) fail for good with the
// provider's words.
func callCDN(ctx context.Context, client *http.Client, name, method, endpoint string, body []byte, key string, headers func(http.Header), check func([]byte) error) (err error) {
	ctx, span := step.StartRequestSpan(ctx, name, method, endpoint, key)
	status := 0
	defer func() {
		step.EndRequestSpan(span, status, err)
		span.End()
	}()
	req, err := http.NewRequestWithContext(ctx, method, endpoint, bytes.NewReader(body))
	if err != nil {
		return step.Permanent("%s: bad API URL: %v", name, err)
	}
	req.Header.Set("User-Agent", "formq-purge/1")
	// The same on every attempt of this call: a receiver that honours
	// idempotency keys purges once.
	req.Header.Set("Idempotency-Key", key)
	headers(req.Header)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s purge: %w", name, unwrapURLError(err))
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		if check != nil {
			return check(answer)
		}
		return nil
	case code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("%s purge answered %d%s", name, code, excerpt(answer))
	default:
		return step.Permanent("%s purge answered %d%s", name, code, excerpt(answer))
	}
}

// excerpt is the start of a provider's answer, for the step's error.
func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return ": " + s
}

// apiBase checks a provider's API URL and drops a trailing slash.
func apiBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q: want an http or https URL", step.RedactURL(raw))
	}
	return strings.TrimRight(raw, "/"), nil
}

// siteBase checks the site URL paths are joined to.
func siteBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("site URL %q: want an http or https URL", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// absoluteURLs joins event paths to the site's base URL.
func absoluteURLs(site string, paths []string) ([]string, error) {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return nil, step.Permanent("path %q: want a path starting with /", p)
		}
		out = append(out, site+p)
	}
	return out, nil
}

// batches splits s into runs of at most n.
func batches(s []string, n int) [][]string {
	var out [][]string
	for len(s) > 0 {
		k := min(n, len(s))
		out = append(out, s[:k])
		s = s[k:]
	}
	return out
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
