// Package config reads formq's settings from the environment, with the
// contract's names and defaults, and refuses to start on a bad one.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config holds every setting of the API and the worker. The env tag names
// the variable; docs/configuration.md lists them all and a test keeps the
// two in step.
type Config struct {
	Env               string        `env:"FORMQ_ENV"` // "production" or "development"
	Addr              string        `env:"FORMQ_ADDR"`
	WorkerAddr        string        `env:"FORMQ_WORKER_ADDR"`
	RedisURL          string        `env:"FORMQ_REDIS_URL"`
	S3Endpoint        string        `env:"FORMQ_S3_ENDPOINT"`
	S3Region          string        `env:"FORMQ_S3_REGION"`
	S3Bucket          string        `env:"FORMQ_S3_BUCKET"`
	S3AccessKey       string        `env:"FORMQ_S3_ACCESS_KEY"`
	S3SecretKey       string        `env:"FORMQ_S3_SECRET_KEY" secret:"true"`
	S3CreateBucket    bool          `env:"FORMQ_S3_CREATE_BUCKET"`
	Actions           string        `env:"FORMQ_ACTIONS"`
	Secret            string        `env:"FORMQ_SECRET" secret:"true"`
	AllowedOrigins    []string      `env:"FORMQ_ALLOWED_ORIGINS"`
	PublicURL         string        `env:"FORMQ_PUBLIC_URL"`
	AdminToken        string        `env:"FORMQ_ADMIN_TOKEN" secret:"true"`
	WorkerConcurrency int           `env:"FORMQ_WORKER_CONCURRENCY"`
	UploadPartSize    int64         `env:"FORMQ_UPLOAD_PART_SIZE"`
	UploadMemory      int64         `env:"FORMQ_UPLOAD_MEMORY"`
	ShutdownTimeout   time.Duration `env:"FORMQ_SHUTDOWN_TIMEOUT"`
	UploadIdle        time.Duration `env:"FORMQ_UPLOAD_IDLE_TIMEOUT"`
	JanitorInterval   time.Duration `env:"FORMQ_JANITOR_INTERVAL"`
	JanitorMinAge     time.Duration `env:"FORMQ_JANITOR_MIN_AGE"`
	EventsMaxLen      int64         `env:"FORMQ_EVENTS_MAXLEN"`
	LogLevel          string        `env:"FORMQ_LOG_LEVEL"`
	OTelEndpoint      string        `env:"FORMQ_OTEL_ENDPOINT"` // OTLP/HTTP collector; tracing off when empty

	// Security of the action endpoints.
	TrustedProxies []string `env:"FORMQ_TRUSTED_PROXIES"` // CIDRs whose X-Forwarded-For is believed
	StrictOrigins  bool     `env:"FORMQ_STRICT_ORIGINS"`  // refuse posts with neither Sec-Fetch-Site nor Origin
	AuthHS256Key   string   `env:"FORMQ_AUTH_HS256_SECRET" secret:"true"`
	AuthJWKSURL    string   `env:"FORMQ_AUTH_JWKS_URL"`
	AuthCookie     string   `env:"FORMQ_AUTH_COOKIE"`
	AuthIssuer     string   `env:"FORMQ_AUTH_ISSUER"`
	AuthAudience   string   `env:"FORMQ_AUTH_AUDIENCE"`

	// Follow-up steps and revalidation.
	WebhookAllowPrivate bool   `env:"FORMQ_WEBHOOK_ALLOW_PRIVATE"` // webhooks may reach loopback and private addresses
	SMTPURL             string `env:"FORMQ_SMTP_URL" secret:"true"`
	RevalidateURL       string `env:"FORMQ_REVALIDATE_URL"`
	RevalidateSecret    string `env:"FORMQ_REVALIDATE_SECRET" secret:"true"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Env:               "production",
		Addr:              ":8080",
		WorkerAddr:        ":9090",
		RedisURL:          "redis://127.0.0.1:6379/0",
		S3Region:          "us-east-1",
		Actions:           "actions.yaml",
		WorkerConcurrency: 2 * runtime.NumCPU(),
		UploadPartSize:    8 << 20,
		UploadMemory:      256 << 20,
		ShutdownTimeout:   25 * time.Second,
		UploadIdle:        30 * time.Second,
		JanitorInterval:   time.Hour,
		JanitorMinAge:     24 * time.Hour,
		EventsMaxLen:      100_000,
		LogLevel:          "info",
		AuthCookie:        "formq_session",
	}
}

// DevSecret seals tokens in development when FORMQ_SECRET is unset, so
// the API, workers and CLI of a local demo agree. Never used in production.
const DevSecret = "formq-development-secret-not-for-production"

// ErrInvalid marks a setting that is missing or malformed.
var ErrInvalid = errors.New("invalid configuration")

// Load fills a Config from getenv over the defaults and checks it. The
// error names the first bad variable in one line.
func Load(getenv func(string) string) (Config, error) {
	c := Default()
	bad := func(name, why string) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s %s", ErrInvalid, name, why)
	}
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	str("FORMQ_ENV", &c.Env)
	str("FORMQ_ADDR", &c.Addr)
	str("FORMQ_WORKER_ADDR", &c.WorkerAddr)
	str("FORMQ_REDIS_URL", &c.RedisURL)
	str("FORMQ_S3_ENDPOINT", &c.S3Endpoint)
	str("FORMQ_S3_REGION", &c.S3Region)
	str("FORMQ_S3_BUCKET", &c.S3Bucket)
	str("FORMQ_S3_ACCESS_KEY", &c.S3AccessKey)
	str("FORMQ_S3_SECRET_KEY", &c.S3SecretKey)
	str("FORMQ_ACTIONS", &c.Actions)
	str("FORMQ_SECRET", &c.Secret)
	str("FORMQ_PUBLIC_URL", &c.PublicURL)
	str("FORMQ_ADMIN_TOKEN", &c.AdminToken)
	str("FORMQ_LOG_LEVEL", &c.LogLevel)
	str("FORMQ_OTEL_ENDPOINT", &c.OTelEndpoint)
	str("FORMQ_AUTH_HS256_SECRET", &c.AuthHS256Key)
	str("FORMQ_AUTH_JWKS_URL", &c.AuthJWKSURL)
	str("FORMQ_AUTH_COOKIE", &c.AuthCookie)
	str("FORMQ_AUTH_ISSUER", &c.AuthIssuer)
	str("FORMQ_AUTH_AUDIENCE", &c.AuthAudience)
	str("FORMQ_SMTP_URL", &c.SMTPURL)
	str("FORMQ_REVALIDATE_URL", &c.RevalidateURL)
	str("FORMQ_REVALIDATE_SECRET", &c.RevalidateSecret)
	if v := getenv("FORMQ_WEBHOOK_ALLOW_PRIVATE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad("FORMQ_WEBHOOK_ALLOW_PRIVATE", "must be true or false")
		}
		c.WebhookAllowPrivate = b
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			return bad("FORMQ_SMTP_URL", "must be a URL like smtp://user:pass@mail.example.com:587?from=forms@example.com")
		}
	}
	if c.RevalidateURL != "" {
		if u, err := url.Parse(c.RevalidateURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("FORMQ_REVALIDATE_URL", "must be an http(s) URL")
		}
		if len(c.RevalidateSecret) < 16 {
			return bad("FORMQ_REVALIDATE_SECRET", "is required with FORMQ_REVALIDATE_URL (whsec_ base64, or at least 16 characters)")
		}
	}
	for p := range strings.SplitSeq(getenv("FORMQ_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !strings.Contains(p, "/") {
				if strings.Contains(p, ":") {
					p += "/128"
				} else {
					p += "/32"
				}
			}
			if _, err := netip.ParsePrefix(p); err != nil {
				return bad("FORMQ_TRUSTED_PROXIES", fmt.Sprintf("has %q, want a CIDR like 10.0.0.0/8", p))
			}
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
	}
	if v := getenv("FORMQ_STRICT_ORIGINS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad("FORMQ_STRICT_ORIGINS", "must be true or false")
		}
		c.StrictOrigins = b
	}
	if c.AuthJWKSURL != "" {
		if u, err := url.Parse(c.AuthJWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("FORMQ_AUTH_JWKS_URL", "must be an http(s) URL")
		}
	}
	if c.AuthHS256Key != "" && len(c.AuthHS256Key) < 32 {
		return bad("FORMQ_AUTH_HS256_SECRET", "must be at least 32 characters")
	}
	for o := range strings.SplitSeq(getenv("FORMQ_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" {
				return bad("FORMQ_ALLOWED_ORIGINS", fmt.Sprintf("has %q, want scheme://host[:port]", o))
			}
			c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimRight(o, "/"))
		}
	}
	if v := getenv("FORMQ_S3_CREATE_BUCKET"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad("FORMQ_S3_CREATE_BUCKET", "must be true or false")
		}
		c.S3CreateBucket = b
	}
	ints := []struct {
		name string
		dst  *int64
	}{
		{"FORMQ_EVENTS_MAXLEN", &c.EventsMaxLen},
	}
	for _, n := range ints {
		if v := getenv(n.name); v != "" {
			i, err := strconv.ParseInt(v, 10, 64)
			if err != nil || i <= 0 {
				return bad(n.name, "must be a positive integer")
			}
			*n.dst = i
		}
	}
	sizes := []struct {
		name string
		dst  *int64
	}{
		{"FORMQ_UPLOAD_PART_SIZE", &c.UploadPartSize},
		{"FORMQ_UPLOAD_MEMORY", &c.UploadMemory},
	}
	for _, n := range sizes {
		if v := getenv(n.name); v != "" {
			i, err := ParseSize(v)
			if err != nil || i <= 0 {
				return bad(n.name, "must be a size like 8MB")
			}
			*n.dst = i
		}
	}
	if v := getenv("FORMQ_WORKER_CONCURRENCY"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i <= 0 {
			return bad("FORMQ_WORKER_CONCURRENCY", "must be a positive integer")
		}
		c.WorkerConcurrency = i
	}
	if v := getenv("FORMQ_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return bad("FORMQ_SHUTDOWN_TIMEOUT", "must be a duration like 25s")
		}
		c.ShutdownTimeout = d
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"FORMQ_UPLOAD_IDLE_TIMEOUT", &c.UploadIdle},
		{"FORMQ_JANITOR_INTERVAL", &c.JanitorInterval},
		{"FORMQ_JANITOR_MIN_AGE", &c.JanitorMinAge},
	}
	for _, n := range durations {
		if v := getenv(n.name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || (d == 0 && n.name != "FORMQ_JANITOR_INTERVAL") {
				return bad(n.name, "must be a duration like 30s or 24h")
			}
			*n.dst = d
		}
	}

	switch c.Env {
	case "production", "development":
	default:
		return bad("FORMQ_ENV", "must be production or development")
	}
	if c.S3Bucket == "" {
		return bad("FORMQ_S3_BUCKET", "is required")
	}
	if c.S3Endpoint != "" {
		if u, err := url.Parse(c.S3Endpoint); err != nil || u.Scheme == "" || u.Host == "" {
			return bad("FORMQ_S3_ENDPOINT", "must be a URL like http://127.0.0.1:7070")
		}
	}
	if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return bad("FORMQ_REDIS_URL", "must be a URL like redis://127.0.0.1:6379/0")
	}
	if (c.S3AccessKey == "") != (c.S3SecretKey == "") {
		return bad("FORMQ_S3_ACCESS_KEY", "and FORMQ_S3_SECRET_KEY must be set together")
	}
	if c.Secret == "" {
		if c.Env != "development" {
			return bad("FORMQ_SECRET", "is required outside development (FORMQ_ENV=development)")
		}
		c.Secret = DevSecret
	}
	for sec := range strings.SplitSeq(c.Secret, ",") {
		if len(strings.TrimSpace(sec)) < 32 {
			return bad("FORMQ_SECRET", "must be at least 32 characters (a comma list rotates: newest first)")
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme == "" || u.Host == "" {
			return bad("FORMQ_PUBLIC_URL", "must be a URL like https://forms.example.com")
		}
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
	if c.UploadMemory < 2*c.UploadPartSize {
		return bad("FORMQ_UPLOAD_MEMORY", "must hold at least two upload parts (2 x FORMQ_UPLOAD_PART_SIZE)")
	}
	if c.UploadPartSize < 5<<20 {
		return bad("FORMQ_UPLOAD_PART_SIZE", "must be at least 5MB (the S3 minimum part size)")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return bad("FORMQ_LOG_LEVEL", "must be debug, info, warn or error")
	}
	if c.OTelEndpoint != "" {
		if u, err := url.Parse(c.OTelEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("FORMQ_OTEL_ENDPOINT", "must be a URL like http://otel-collector:4318")
		}
	}
	return c, nil
}

// Development reports whether relaxed development defaults apply.
func (c Config) Development() bool { return c.Env == "development" }

// SlogLevel is the configured log level.
func (c Config) SlogLevel() slog.Level {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	return lvl
}

// LogValue logs the configuration with secrets masked.
func (c Config) LogValue() slog.Value {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	return slog.GroupValue(
		slog.String("env", c.Env),
		slog.String("addr", c.Addr),
		slog.String("worker_addr", c.WorkerAddr),
		slog.String("redis_url", maskURL(c.RedisURL)),
		slog.String("s3_endpoint", c.S3Endpoint),
		slog.String("s3_region", c.S3Region),
		slog.String("s3_bucket", c.S3Bucket),
		slog.String("s3_access_key", c.S3AccessKey),
		slog.String("s3_secret_key", mask(c.S3SecretKey)),
		slog.String("actions", c.Actions),
		slog.String("secret", mask(c.Secret)),
		slog.Any("allowed_origins", c.AllowedOrigins),
		slog.String("public_url", c.PublicURL),
		slog.String("admin_token", mask(c.AdminToken)),
		slog.Int("worker_concurrency", c.WorkerConcurrency),
		slog.Int64("upload_part_size", c.UploadPartSize),
		slog.Int64("upload_memory", c.UploadMemory),
		slog.Duration("upload_idle_timeout", c.UploadIdle),
		slog.Duration("janitor_interval", c.JanitorInterval),
		slog.Duration("janitor_min_age", c.JanitorMinAge),
		slog.Any("trusted_proxies", c.TrustedProxies),
		slog.Bool("strict_origins", c.StrictOrigins),
		slog.String("auth_hs256_secret", mask(c.AuthHS256Key)),
		slog.String("auth_jwks_url", c.AuthJWKSURL),
		slog.String("auth_cookie", c.AuthCookie),
		slog.String("otel_endpoint", maskURL(c.OTelEndpoint)),
		slog.Bool("webhook_allow_private", c.WebhookAllowPrivate),
		slog.String("smtp_url", maskURL(c.SMTPURL)),
		slog.String("revalidate_url", maskURL(c.RevalidateURL)),
		slog.String("revalidate_secret", mask(c.RevalidateSecret)),
	)
}

func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "***"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	return u.String()
}

// ParseSize reads sizes like "5MB", "512KiB", "1GB" or a plain byte count.
// Units are binary (1MB = 1 MiB) as users of upload limits expect.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	units := []struct {
		suffix string
		mult   int64
	}{
		{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
		{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
		{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(f * float64(mult)), nil
}
