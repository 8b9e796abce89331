package formq

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/internal/bytesize"
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

	// SecretEphemeral says FORMQ_SECRET was unset in development and
	// Secret is a random key of this process: tokens it seals stop
	// working when it restarts and no other process can open them.
	SecretEphemeral bool
}

// Default returns the configuration used when nothing is set.
func DefaultConfig() Config {
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

// randomSecret is 32 bytes from crypto/rand, base64url.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrInvalid marks a setting that is missing or malformed.
var ErrInvalid = errors.New("invalid configuration")

// Load fills a Config from getenv over the defaults and checks it. The
// error names the first bad variable in one line.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	e := &env{getenv: getenv}
	e.str("FORMQ_ENV", &c.Env)
	e.str("FORMQ_ADDR", &c.Addr)
	e.str("FORMQ_WORKER_ADDR", &c.WorkerAddr)
	e.str("FORMQ_REDIS_URL", &c.RedisURL)
	e.str("FORMQ_S3_ENDPOINT", &c.S3Endpoint)
	e.str("FORMQ_S3_REGION", &c.S3Region)
	e.str("FORMQ_S3_BUCKET", &c.S3Bucket)
	e.str("FORMQ_S3_ACCESS_KEY", &c.S3AccessKey)
	e.str("FORMQ_S3_SECRET_KEY", &c.S3SecretKey)
	e.str("FORMQ_ACTIONS", &c.Actions)
	e.str("FORMQ_SECRET", &c.Secret)
	e.str("FORMQ_PUBLIC_URL", &c.PublicURL)
	e.str("FORMQ_ADMIN_TOKEN", &c.AdminToken)
	e.str("FORMQ_LOG_LEVEL", &c.LogLevel)
	e.str("FORMQ_OTEL_ENDPOINT", &c.OTelEndpoint)
	e.str("FORMQ_AUTH_HS256_SECRET", &c.AuthHS256Key)
	e.str("FORMQ_AUTH_JWKS_URL", &c.AuthJWKSURL)
	e.str("FORMQ_AUTH_COOKIE", &c.AuthCookie)
	e.str("FORMQ_AUTH_ISSUER", &c.AuthIssuer)
	e.str("FORMQ_AUTH_AUDIENCE", &c.AuthAudience)
	e.str("FORMQ_SMTP_URL", &c.SMTPURL)
	e.str("FORMQ_REVALIDATE_URL", &c.RevalidateURL)
	e.str("FORMQ_REVALIDATE_SECRET", &c.RevalidateSecret)
	e.boolean("FORMQ_WEBHOOK_ALLOW_PRIVATE", &c.WebhookAllowPrivate)
	e.boolean("FORMQ_STRICT_ORIGINS", &c.StrictOrigins)
	e.boolean("FORMQ_S3_CREATE_BUCKET", &c.S3CreateBucket)
	e.positive("FORMQ_EVENTS_MAXLEN", &c.EventsMaxLen)
	var concurrency = int64(c.WorkerConcurrency)
	e.positive("FORMQ_WORKER_CONCURRENCY", &concurrency)
	c.WorkerConcurrency = int(concurrency)
	e.size("FORMQ_UPLOAD_PART_SIZE", &c.UploadPartSize)
	e.size("FORMQ_UPLOAD_MEMORY", &c.UploadMemory)
	e.duration("FORMQ_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, false)
	e.duration("FORMQ_UPLOAD_IDLE_TIMEOUT", &c.UploadIdle, false)
	e.duration("FORMQ_JANITOR_INTERVAL", &c.JanitorInterval, true) // 0 turns the janitor off
	e.duration("FORMQ_JANITOR_MIN_AGE", &c.JanitorMinAge, false)
	for o := range e.list("FORMQ_ALLOWED_ORIGINS") {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" {
			e.fail("FORMQ_ALLOWED_ORIGINS", fmt.Sprintf("has %q, want scheme://host[:port]", o))
		}
		c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimRight(o, "/"))
	}
	for p := range e.list("FORMQ_TRUSTED_PROXIES") {
		if !strings.Contains(p, "/") {
			if strings.Contains(p, ":") {
				p += "/128"
			} else {
				p += "/32"
			}
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			e.fail("FORMQ_TRUSTED_PROXIES", fmt.Sprintf("has %q, want a CIDR like 10.0.0.0/8", p))
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	e.url("FORMQ_S3_ENDPOINT", c.S3Endpoint, "must be a URL like http://127.0.0.1:7070", "http", "https")
	e.url("FORMQ_PUBLIC_URL", c.PublicURL, "must be a URL like https://forms.example.com", "http", "https")
	e.url("FORMQ_SMTP_URL", c.SMTPURL, "must be a URL like smtp://user:pass@mail.example.com:587?from=forms@example.com", "smtp", "smtps")
	e.url("FORMQ_REVALIDATE_URL", c.RevalidateURL, "must be an http(s) URL", "http", "https")
	e.url("FORMQ_AUTH_JWKS_URL", c.AuthJWKSURL, "must be an http(s) URL", "http", "https")
	e.url("FORMQ_OTEL_ENDPOINT", c.OTelEndpoint, "must be a URL like http://otel-collector:4318", "http", "https")
	if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		e.fail("FORMQ_REDIS_URL", "must be a URL like redis://127.0.0.1:6379/0")
	}
	if e.err != nil {
		return Config{}, e.err
	}

	switch {
	case c.Env != "production" && c.Env != "development":
		e.fail("FORMQ_ENV", "must be production or development")
	case c.S3Bucket == "":
		e.fail("FORMQ_S3_BUCKET", "is required")
	case (c.S3AccessKey == "") != (c.S3SecretKey == ""):
		e.fail("FORMQ_S3_ACCESS_KEY", "and FORMQ_S3_SECRET_KEY must be set together")
	case c.RevalidateURL != "" && len(c.RevalidateSecret) < 16:
		e.fail("FORMQ_REVALIDATE_SECRET", "is required with FORMQ_REVALIDATE_URL (whsec_ base64, or at least 16 characters)")
	case c.AuthHS256Key != "" && len(c.AuthHS256Key) < 32:
		e.fail("FORMQ_AUTH_HS256_SECRET", "must be at least 32 characters")
	case c.AdminToken != "" && len(c.AdminToken) < 32 && c.Env != "development":
		e.fail("FORMQ_ADMIN_TOKEN", "must be at least 32 characters outside development")
	case c.Secret == "" && c.Env != "development":
		e.fail("FORMQ_SECRET", "is required outside development (FORMQ_ENV=development)")
	case c.UploadMemory < 2*c.UploadPartSize:
		e.fail("FORMQ_UPLOAD_MEMORY", "must hold at least two upload parts (2 x FORMQ_UPLOAD_PART_SIZE)")
	case c.UploadPartSize < 5<<20:
		e.fail("FORMQ_UPLOAD_PART_SIZE", "must be at least 5MB (the S3 minimum part size)")
	}
	if c.Secret == "" {
		// Development without FORMQ_SECRET: a random key of this process
		// alone, never a key anyone else knows. Tokens die with it.
		c.Secret, c.SecretEphemeral = randomSecret(), true
	}
	for sec := range strings.SplitSeq(c.Secret, ",") {
		if len(strings.TrimSpace(sec)) < 32 {
			e.fail("FORMQ_SECRET", "must be at least 32 characters (a comma list rotates: newest first)")
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		e.fail("FORMQ_LOG_LEVEL", "must be debug, info, warn or error")
	}
	if e.err != nil {
		return Config{}, e.err
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c, nil
}

// env reads typed settings and keeps the first problem.
type env struct {
	getenv func(string) string
	err    error
}

func (e *env) fail(name, why string) {
	if e.err == nil {
		e.err = fmt.Errorf("%w: %s %s", ErrInvalid, name, why)
	}
}

func (e *env) get(name string) string { return strings.TrimSpace(e.getenv(name)) }

func (e *env) str(name string, dst *string) {
	if v := e.get(name); v != "" {
		*dst = v
	}
}

func (e *env) boolean(name string, dst *bool) {
	if v := e.get(name); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			e.fail(name, "must be true or false")
		}
		*dst = b
	}
}

func (e *env) positive(name string, dst *int64) {
	if v := e.get(name); v != "" {
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil || i <= 0 {
			e.fail(name, "must be a positive integer")
		}
		*dst = i
	}
}

func (e *env) size(name string, dst *int64) {
	if v := e.get(name); v != "" {
		i, err := bytesize.Parse(v)
		if err != nil || i <= 0 {
			e.fail(name, "must be a size like 8MB")
		}
		*dst = i
	}
}

func (e *env) duration(name string, dst *time.Duration, zeroOK bool) {
	if v := e.get(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (d == 0 && !zeroOK) {
			e.fail(name, "must be a duration like 30s or 24h")
		}
		*dst = d
	}
}

// list yields the non-empty items of a comma list.
func (e *env) list(name string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for item := range strings.SplitSeq(e.getenv(name), ",") {
			if item = strings.TrimSpace(item); item != "" && !yield(item) {
				return
			}
		}
	}
}

// url checks an optional URL setting's scheme and host.
func (e *env) url(name, value, why string, schemes ...string) {
	if value == "" {
		return
	}
	if u, err := url.Parse(value); err != nil || !slices.Contains(schemes, u.Scheme) || u.Host == "" {
		e.fail(name, why)
	}
}

// Development reports whether relaxed development defaults apply.
func (c Config) Development() bool { return c.Env == "development" }

// SlogLevel is the configured log level.
func (c Config) SlogLevel() slog.Level {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	return lvl
}

// LogValue logs every setting, keyed by its variable's name without the
// FORMQ_ prefix (FORMQ_S3_BUCKET is s3_bucket). Fields tagged secret show
// only whether they are set, and passwords inside URLs are masked, so a
// setting added to the struct is logged, and masked, without more code.
func (c Config) LogValue() slog.Value {
	v := reflect.ValueOf(c)
	attrs := make([]slog.Attr, 0, v.NumField())
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name, ok := f.Tag.Lookup("env")
		if !ok {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(name, "FORMQ_"))
		val := v.Field(i).Interface()
		switch s, isString := val.(string); {
		case f.Tag.Get("secret") == "true":
			if !v.Field(i).IsZero() {
				val = "***"
			}
		case isString && strings.Contains(s, "://"):
			val = maskURL(s)
		}
		attrs = append(attrs, slog.Any(key, val))
	}
	return slog.GroupValue(attrs...)
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
