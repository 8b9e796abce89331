package builtin

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/formq/formq/jobs/step"
)

// WebhookSettings are the declaration of a webhook step.
type WebhookSettings struct {
	URL       string `json:"url"`
	SecretEnv string `json:"secret_env"`
	// FileURLTTL is how long the download link of each file in the
	// payload works, like 1h; DefaultFileURLTTL when empty.
	FileURLTTL string `json:"file_url_ttl,omitempty"`
}

// Bounds of a webhook step's file_url_ttl: S3 signs links for at most 7
// days.
const (
	DefaultFileURLTTL = time.Hour
	MaxFileURLTTL     = 7 * 24 * time.Hour
)

// FileURLValidity is how long the payload's download links work: the
// checked file_url_ttl, or DefaultFileURLTTL.
func (c WebhookSettings) FileURLValidity() time.Duration {
	if d, err := time.ParseDuration(c.FileURLTTL); err == nil && d > 0 {
		return d
	}
	return DefaultFileURLTTL
}

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Check reports what is wrong with the settings, the secret aside.
func (c WebhookSettings) Check() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want an http or https URL", c.URL)
	}
	if !envNamePattern.MatchString(c.SecretEnv) {
		return errors.New("secret_env: want the name of the environment variable holding the signing secret (whsec_...)")
	}
	if c.FileURLTTL != "" {
		d, err := time.ParseDuration(c.FileURLTTL)
		if err != nil || d < time.Second || d > MaxFileURLTTL {
			return fmt.Errorf("file_url_ttl %q: want a duration from 1s to 168h (7 days, the longest S3 signs a link for), like 1h", c.FileURLTTL)
		}
	}
	return nil
}

// CheckWebhook checks a webhook step's settings; with getenv, also that
// its secret_env holds a valid secret (ParseSecret) in this process.
func CheckWebhook(getenv func(string) string) step.CheckFunc {
	return func(cfg map[string]any) error {
		var c WebhookSettings
		if err := step.Decode(cfg, &c); err != nil {
			return err
		}
		if err := c.Check(); err != nil {
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
	}
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
