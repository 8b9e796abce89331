package formq

import (
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

	"github.com/caarlos0/env/v11"
	"github.com/formq/formq/internal/bytesize"
	"github.com/formq/formq/internal/period"
)

// Config holds every setting of the API and the worker, grouped by
// concern. Each group is embedded, so a setting reads as cfg.RedisURL as
// well as cfg.RedisConfig.RedisURL. The env tag names the variable (read
// by caarlos0/env); DefaultConfig holds the defaults; docs/configuration.md
// gives each one's meaning, printed by --help, and a test keeps the
// document and the struct in step.
//
// Config holds only what the operator set: what a process derives at
// start (such as the random sealing key of a development API without
// FORMQ_SECRET) belongs to the part that derives it.
type Config struct {
	ServerConfig
	RedisConfig
	S3Config
	UploadConfig
	SecurityConfig
	AuthConfig
	EventsConfig
	WorkerConfig
	TelemetryConfig
	StepsConfig
	SinksConfig
	AdminsConfig
}

// ServerConfig is what the processes are and where the API listens.
type ServerConfig struct {
	Env         string `env:"FORMQ_ENV"` // "production" or "development"
	Addr        string `env:"FORMQ_ADDR"`
	MetricsAddr string `env:"FORMQ_METRICS_ADDR"` // serve the API's /metrics here instead of FORMQ_ADDR
	Actions     string `env:"FORMQ_ACTIONS"`
	// ActionsWatch is how often the processes look for a changed actions
	// file to reload; 0: only on SIGHUP.
	ActionsWatch time.Duration `env:"FORMQ_ACTIONS_WATCH"`
	PublicURL    string        `env:"FORMQ_PUBLIC_URL"`
	// ShutdownTimeout bounds the API's drain and the worker's last tasks
	// after SIGTERM.
	ShutdownTimeout time.Duration `env:"FORMQ_SHUTDOWN_TIMEOUT"`
}

// RedisConfig is the Redis holding the queue, events and status.
type RedisConfig struct {
	RedisURL string `env:"FORMQ_REDIS_URL"`
	// A submission is acknowledged (202) only once this many Redis
	// replicas have it, waiting at most RedisReplicaTimeout; 0 (unset)
	// does not wait.
	RedisMinReplicas    int           `env:"FORMQ_REDIS_MIN_REPLICAS"`
	RedisReplicaTimeout time.Duration `env:"FORMQ_REDIS_REPLICA_TIMEOUT"`
}

// S3Config is the bucket holding uploads and submission records.
type S3Config struct {
	S3Endpoint     string `env:"FORMQ_S3_ENDPOINT"`
	S3Region       string `env:"FORMQ_S3_REGION"`
	S3Bucket       string `env:"FORMQ_S3_BUCKET"`
	S3AccessKey    string `env:"FORMQ_S3_ACCESS_KEY"`
	S3SecretKey    string `env:"FORMQ_S3_SECRET_KEY" secret:"true"`
	S3CreateBucket bool   `env:"FORMQ_S3_CREATE_BUCKET"`
	// S3PublicEndpoint is where presigned links point (webhook file
	// URLs, admin downloads, presigned uploads) when S3's address for
	// formq is not one the receivers can reach.
	S3PublicEndpoint string `env:"FORMQ_S3_PUBLIC_ENDPOINT"`
	// S3StallTimeout bounds each S3 request of an upload that makes no
	// progress (takes no bytes, gives no answer): the upload then fails
	// with 503 instead of waiting on a hung S3.
	S3StallTimeout time.Duration `env:"FORMQ_S3_STALL_TIMEOUT"`
}

// UploadConfig is how the API streams uploads to S3: part buffers, their
// admission, and resumable (tus) uploads.
type UploadConfig struct {
	UploadPartSize ByteSize      `env:"FORMQ_UPLOAD_PART_SIZE"`
	UploadMemory   ByteSize      `env:"FORMQ_UPLOAD_MEMORY"`
	UploadIdle     time.Duration `env:"FORMQ_UPLOAD_IDLE_TIMEOUT"`
	// Upload admission: how long an upload may wait for a part buffer,
	// how many one client may hold, and the pace a body holding one must
	// keep (bytes per second over a whole period).
	UploadBufferWait    time.Duration `env:"FORMQ_UPLOAD_BUFFER_WAIT"`
	UploadClientBuffers int           `env:"FORMQ_UPLOAD_CLIENT_BUFFERS"`
	UploadMinRate       ByteSize      `env:"FORMQ_UPLOAD_MIN_RATE"`
	UploadRatePeriod    time.Duration `env:"FORMQ_UPLOAD_RATE_PERIOD"`
	// Resumable (tus) uploads: how long an unfinished one may be resumed
	// before the janitor removes it, where the API buffers its parts on
	// disk (the system's temporary directory when empty), and how many
	// unfinished ones one client may have.
	TusExpiry        time.Duration `env:"FORMQ_TUS_EXPIRY"`
	TusTempDir       string        `env:"FORMQ_TUS_TEMP_DIR"`
	TusClientUploads int           `env:"FORMQ_TUS_CLIENT_UPLOADS"`
}

// SecurityConfig is who may post to the actions and read the admin
// endpoints, and the key sealing tokens clients carry.
type SecurityConfig struct {
	// Secret seals bound arguments and upload references; a comma list
	// rotates keys, newest first. Empty only in development, where the
	// API seals with a random key of its own.
	Secret         string   `env:"FORMQ_SECRET" secret:"true"`
	AdminToken     string   `env:"FORMQ_ADMIN_TOKEN" secret:"true"`
	AllowedOrigins []string `env:"FORMQ_ALLOWED_ORIGINS"`
	TrustedProxies []string `env:"FORMQ_TRUSTED_PROXIES"` // CIDRs whose X-Forwarded-For is believed
	StrictOrigins  bool     `env:"FORMQ_STRICT_ORIGINS"`  // refuse posts with neither Sec-Fetch-Site nor Origin
}

// AuthConfig verifies the JWTs of actions declaring auth:.
type AuthConfig struct {
	AuthHS256Key string `env:"FORMQ_AUTH_HS256_SECRET" secret:"true"`
	AuthJWKSURL  string `env:"FORMQ_AUTH_JWKS_URL"`
	AuthCookie   string `env:"FORMQ_AUTH_COOKIE"`
	AuthIssuer   string `env:"FORMQ_AUTH_ISSUER"`
	AuthAudience string `env:"FORMQ_AUTH_AUDIENCE"`
}

// EventsConfig is the event stream: who reads every event, how long the
// stream grows, and how many streams an API process holds open.
type EventsConfig struct {
	EventsToken  string `env:"FORMQ_EVENTS_TOKEN" secret:"true"` // bearer for every event of GET /events
	EventsMaxLen int64  `env:"FORMQ_EVENTS_MAXLEN"`
	// Open event streams (GET /events, /submissions/{id}/events) per
	// client address and in all, per API process; more answer 429.
	StreamsPerClient int `env:"FORMQ_STREAMS_PER_CLIENT"`
	StreamsMax       int `env:"FORMQ_STREAMS_MAX"`
	// WaitMax caps the answers one API process holds for actions with
	// wait:; past it they are answered at once (202).
	WaitMax int `env:"FORMQ_WAIT_MAX"`
}

// WorkerConfig is the worker process: where it answers probes, how many
// tasks it runs, and its janitor's sweeps.
type WorkerConfig struct {
	WorkerAddr        string        `env:"FORMQ_WORKER_ADDR"`
	WorkerConcurrency int           `env:"FORMQ_WORKER_CONCURRENCY"`
	JanitorInterval   time.Duration `env:"FORMQ_JANITOR_INTERVAL"`
	JanitorMinAge     time.Duration `env:"FORMQ_JANITOR_MIN_AGE"`
	// Retention is how long stored submissions of actions without their
	// own retention are kept; 0 keeps them.
	Retention Period `env:"FORMQ_RETENTION"`
}

// TelemetryConfig is what the processes log and trace.
type TelemetryConfig struct {
	LogLevel string `env:"FORMQ_LOG_LEVEL"`
	// AccessLogSample writes the request line of one in this many
	// answers below 400; errors are always logged.
	AccessLogSample int    `env:"FORMQ_ACCESS_LOG_SAMPLE"`
	OTelEndpoint    string `env:"FORMQ_OTEL_ENDPOINT"` // OTLP/HTTP collector; tracing off when empty
}

// StepsConfig is what the built-in follow-up steps reach and spend:
// webhooks' addresses, the mail server, thumbnails' memory.
type StepsConfig struct {
	WebhookAllowPrivate bool   `env:"FORMQ_WEBHOOK_ALLOW_PRIVATE"` // webhooks may reach loopback and private addresses
	SMTPURL             string `env:"FORMQ_SMTP_URL" secret:"true"`
	// Thumbnail decoding: one decoded image at most, and every image a
	// worker process decodes at once together.
	ThumbnailMaxDecode    ByteSize `env:"FORMQ_THUMBNAIL_MAX_DECODE"`
	ThumbnailDecodeBudget ByteSize `env:"FORMQ_THUMBNAIL_DECODE_BUDGET"`
}

// SinksConfig is where the worker sends revalidation events: a signed
// webhook, and each CDN or framework provider.
type SinksConfig struct {
	SiteURL          string `env:"FORMQ_SITE_URL"` // base URL turning event paths into absolute URLs
	RevalidateURL    string `env:"FORMQ_REVALIDATE_URL"`
	RevalidateSecret string `env:"FORMQ_REVALIDATE_SECRET" secret:"true"`
	CloudflareConfig
	FastlyConfig
	NextConfig
}

// CloudflareConfig purges Cloudflare's cache of every revalidation event.
type CloudflareConfig struct {
	CloudflareAPIToken string `env:"FORMQ_CLOUDFLARE_API_TOKEN" secret:"true"`
	CloudflareZoneID   string `env:"FORMQ_CLOUDFLARE_ZONE_ID"`
	CloudflareAPIURL   string `env:"FORMQ_CLOUDFLARE_API_URL"`
}

// FastlyConfig purges Fastly's cache of every revalidation event.
type FastlyConfig struct {
	FastlyAPIKey    string `env:"FORMQ_FASTLY_API_KEY" secret:"true"`
	FastlyServiceID string `env:"FORMQ_FASTLY_SERVICE_ID"`
	FastlyAPIURL    string `env:"FORMQ_FASTLY_API_URL"`
	FastlySoftPurge bool   `env:"FORMQ_FASTLY_SOFT_PURGE"` // mark purged objects stale instead of removing them
}

// NextConfig tells Next.js revalidation routes of every event.
type NextConfig struct {
	NextRevalidateURLs   []string `env:"FORMQ_NEXT_REVALIDATE_URL"`
	NextRevalidateSecret string   `env:"FORMQ_NEXT_REVALIDATE_SECRET" secret:"true"`
}

// AdminsConfig is who may use the admin side besides the admin token:
// named people with roles, signed in by an authenticating proxy.
type AdminsConfig struct {
	// Admins maps emails and groups to roles, like
	// "alice@example.org=admin,group:support=viewer".
	Admins string `env:"FORMQ_ADMINS"`
	// AdminProxies are the addresses (CIDRs) of the authenticating proxy
	// whose X-Forwarded-Email/-User/-Groups headers are believed.
	AdminProxies []string `env:"FORMQ_ADMIN_PROXIES"`
	// formq's own sign-in with an OpenID Connect provider.
	AdminOIDCIssuer       string   `env:"FORMQ_ADMIN_OIDC_ISSUER"`
	AdminOIDCClientID     string   `env:"FORMQ_ADMIN_OIDC_CLIENT_ID"`
	AdminOIDCClientSecret string   `env:"FORMQ_ADMIN_OIDC_CLIENT_SECRET" secret:"true"`
	AdminOIDCScopes       []string `env:"FORMQ_ADMIN_OIDC_SCOPES"`
	AdminOIDCGroupsClaim  string   `env:"FORMQ_ADMIN_OIDC_GROUPS_CLAIM"`
	// AuditRetention is how long the audit log keeps its entries.
	AuditRetention Period `env:"FORMQ_AUDIT_RETENTION"`
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		ServerConfig: ServerConfig{Env: "production", Addr: ":8080", Actions: "actions.yaml", ActionsWatch: 2 * time.Second, ShutdownTimeout: 25 * time.Second},
		RedisConfig:  RedisConfig{RedisURL: "redis://127.0.0.1:6379/0", RedisReplicaTimeout: time.Second},
		S3Config:     S3Config{S3Region: "us-east-1", S3StallTimeout: 15 * time.Second},
		UploadConfig: UploadConfig{
			UploadPartSize: 8 << 20, UploadMemory: 256 << 20, UploadIdle: 30 * time.Second,
			UploadBufferWait: 3 * time.Second, UploadClientBuffers: 4, UploadMinRate: 16 << 10, UploadRatePeriod: 5 * time.Second,
			TusExpiry: 24 * time.Hour, TusClientUploads: 20,
		},
		EventsConfig: EventsConfig{EventsMaxLen: 100_000, StreamsPerClient: 16, StreamsMax: 10_000, WaitMax: 1000},
		WorkerConfig: WorkerConfig{
			WorkerAddr:        ":9090",
			WorkerConcurrency: 4 * runtime.NumCPU(), // tasks wait on S3 and Redis far more than they compute
			JanitorInterval:   time.Hour, JanitorMinAge: 24 * time.Hour,
		},
		TelemetryConfig: TelemetryConfig{LogLevel: "info", AccessLogSample: 1},
		AuthConfig:      AuthConfig{AuthCookie: "formq_session"},
		AdminsConfig:    AdminsConfig{AuditRetention: Period(400 * 24 * time.Hour), AdminOIDCScopes: []string{"openid", "email", "profile"}, AdminOIDCGroupsClaim: "groups"},
		StepsConfig:     StepsConfig{ThumbnailMaxDecode: 64 << 20, ThumbnailDecodeBudget: 256 << 20},
		SinksConfig: SinksConfig{
			CloudflareConfig: CloudflareConfig{CloudflareAPIURL: "https://api.cloudflare.com/client/v4"},
			FastlyConfig:     FastlyConfig{FastlyAPIURL: "https://api.fastly.com"},
		},
	}
}

// Period is a long time setting, written like 90d or 720h.
type Period time.Duration

func (p Period) String() string {
	if p == 0 {
		return "none"
	}
	return period.Format(time.Duration(p))
}

// ErrInvalid marks a setting that is missing or malformed.
var ErrInvalid = errors.New("invalid configuration")

// ByteSize is a size setting, written like 8MB, 512KiB or a byte count
// (binary units: 1MB = 1 MiB), and printed back the same way.
type ByteSize int64

// UnmarshalText reads a positive size.
func (s *ByteSize) UnmarshalText(text []byte) error {
	n, err := bytesize.Parse(string(text))
	if err != nil || n <= 0 {
		return errors.New("must be a size like 8MB")
	}
	*s = ByteSize(n)
	return nil
}

// MarshalText writes the size as UnmarshalText reads it.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   ByteSize
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if s != 0 && s%u.mult == 0 {
			return strconv.FormatInt(int64(s/u.mult), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// parsers read the settings' values for caarlos0/env, each failing with the
// reason shown after the variable's name.
var parsers = map[reflect.Type]env.ParserFunc{
	reflect.TypeFor[string](): func(v string) (any, error) { return strings.TrimSpace(v), nil },
	reflect.TypeFor[bool](): func(v string) (any, error) {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, errors.New("must be true or false")
		}
		return b, nil
	},
	reflect.TypeFor[int](): func(v string) (any, error) {
		i, err := strconv.Atoi(v)
		if err != nil || i <= 0 {
			return nil, errors.New("must be a positive integer")
		}
		return i, nil
	},
	reflect.TypeFor[int64](): func(v string) (any, error) {
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil || i <= 0 {
			return nil, errors.New("must be a positive integer")
		}
		return i, nil
	},
	reflect.TypeFor[Period](): func(v string) (any, error) {
		d, err := period.Parse(v)
		if err != nil {
			return nil, errors.New("must be a period like 90d or 720h")
		}
		return Period(d), nil
	},
	reflect.TypeFor[time.Duration](): func(v string) (any, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, errors.New("must be a duration like 30s or 24h")
		}
		return d, nil
	},
}

// LoadConfig fills a Config from getenv over DefaultConfig and checks it.
// An empty variable counts as unset. The error names the first bad
// variable in one line: "FORMQ_X: why".
func LoadConfig(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	// getenv cannot list variables, so every name the struct reads is
	// looked up; the map is never nil, or env would read os.Environ.
	vars := make(map[string]string)
	for _, name := range settingNames() {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			vars[name] = v
		}
	}
	if err := env.ParseWithOptions(&c, env.Options{Environment: vars, FuncMap: parsers}); err != nil {
		return Config{}, refusal(err)
	}
	if err := c.check(); err != nil {
		return Config{}, err
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	c.SiteURL = strings.TrimRight(c.SiteURL, "/")
	return c, nil
}

// settingNames are the variables Config reads, in field order.
func settingNames() []string {
	var names []string
	for _, f := range settingFields() {
		names = append(names, f.Tag.Get("env"))
	}
	return names
}

// settingFields are Config's fields with an env tag, those of its groups
// included, in field order; each one's Index reaches it from Config.
func settingFields() []reflect.StructField {
	var fields []reflect.StructField
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		if f.Tag.Get("env") != "" {
			fields = append(fields, f)
		}
	}
	return fields
}

// refusal turns caarlos0/env's first error into the one-line refusal
// naming the variable.
func refusal(err error) error {
	var pe env.ParseError
	if errors.As(err, &pe) {
		if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
			name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			return invalid(name, pe.Err.Error())
		}
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

func invalid(name, why string) error { return fmt.Errorf("%w: %s: %s", ErrInvalid, name, why) }

// check refuses values of the right type that formq cannot use, and
// tidies the lists. It reports the first problem.
func (c *Config) check() error {
	var problems []error
	fail := func(name, why string) { problems = append(problems, invalid(name, why)) }

	c.AllowedOrigins = slices.DeleteFunc(c.AllowedOrigins, func(s string) bool { return s == "" })
	for i, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" {
			fail("FORMQ_ALLOWED_ORIGINS", fmt.Sprintf("has %q, want scheme://host[:port]", o))
		}
		c.AllowedOrigins[i] = strings.TrimRight(o, "/")
	}
	c.TrustedProxies = slices.DeleteFunc(c.TrustedProxies, func(s string) bool { return s == "" })
	for i, p := range c.TrustedProxies {
		if !strings.Contains(p, "/") {
			if strings.Contains(p, ":") {
				p += "/128"
			} else {
				p += "/32"
			}
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			fail("FORMQ_TRUSTED_PROXIES", fmt.Sprintf("has %q, want a CIDR like 10.0.0.0/8", p))
		}
		c.TrustedProxies[i] = p
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"FORMQ_SHUTDOWN_TIMEOUT", c.ShutdownTimeout}, {"FORMQ_UPLOAD_IDLE_TIMEOUT", c.UploadIdle}, {"FORMQ_JANITOR_MIN_AGE", c.JanitorMinAge},
		{"FORMQ_UPLOAD_BUFFER_WAIT", c.UploadBufferWait}, {"FORMQ_UPLOAD_RATE_PERIOD", c.UploadRatePeriod}, {"FORMQ_TUS_EXPIRY", c.TusExpiry},
		{"FORMQ_S3_STALL_TIMEOUT", c.S3StallTimeout}} {
		if d.value == 0 {
			fail(d.name, "must be a duration like 30s or 24h") // only FORMQ_JANITOR_INTERVAL may be 0
		}
	}
	for _, u := range []struct {
		name, value, why string
		schemes          []string
	}{
		{"FORMQ_REDIS_URL", c.RedisURL, "must be a URL like redis://127.0.0.1:6379/0 or redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0", []string{"redis", "rediss", "redis+sentinel"}},
		{"FORMQ_S3_ENDPOINT", c.S3Endpoint, "must be a URL like http://127.0.0.1:7070", []string{"http", "https"}},
		{"FORMQ_S3_PUBLIC_ENDPOINT", c.S3PublicEndpoint, "must be a URL like https://files.example.com", []string{"http", "https"}},
		{"FORMQ_PUBLIC_URL", c.PublicURL, "must be a URL like https://forms.example.com", []string{"http", "https"}},
		{"FORMQ_SMTP_URL", c.SMTPURL, "must be a URL like smtp://user:pass@mail.example.com:587?from=forms@example.com", []string{"smtp", "smtps"}},
		{"FORMQ_REVALIDATE_URL", c.RevalidateURL, "must be an http(s) URL", []string{"http", "https"}},
		{"FORMQ_SITE_URL", c.SiteURL, "must be a URL like https://www.example.com", []string{"http", "https"}},
		{"FORMQ_CLOUDFLARE_API_URL", c.CloudflareAPIURL, "must be an http(s) URL", []string{"http", "https"}},
		{"FORMQ_FASTLY_API_URL", c.FastlyAPIURL, "must be an http(s) URL", []string{"http", "https"}},
		{"FORMQ_AUTH_JWKS_URL", c.AuthJWKSURL, "must be an http(s) URL", []string{"http", "https"}},
		{"FORMQ_OTEL_ENDPOINT", c.OTelEndpoint, "must be a URL like http://otel-collector:4318", []string{"http", "https"}},
	} {
		if u.value == "" {
			continue
		}
		if p, err := url.Parse(u.value); err != nil || !slices.Contains(u.schemes, p.Scheme) || p.Host == "" {
			fail(u.name, u.why)
		}
	}
	c.NextRevalidateURLs = slices.DeleteFunc(c.NextRevalidateURLs, func(s string) bool { return s == "" })
	for _, raw := range c.NextRevalidateURLs {
		if p, err := url.Parse(raw); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			fail("FORMQ_NEXT_REVALIDATE_URL", fmt.Sprintf("has %q, want http(s) URLs separated by commas", raw))
		}
	}
	if len(problems) > 0 {
		return problems[0]
	}

	switch {
	case c.Env != "production" && c.Env != "development":
		fail("FORMQ_ENV", "must be production or development")
	case c.S3Bucket == "":
		fail("FORMQ_S3_BUCKET", "is required")
	case (c.S3AccessKey == "") != (c.S3SecretKey == ""):
		fail("FORMQ_S3_ACCESS_KEY", "must be set together with FORMQ_S3_SECRET_KEY")
	case c.RevalidateURL != "" && len(c.RevalidateSecret) < 16:
		fail("FORMQ_REVALIDATE_SECRET", "is required with FORMQ_REVALIDATE_URL (whsec_ base64, or at least 16 characters)")
	case len(c.NextRevalidateURLs) > 0 && len(c.NextRevalidateSecret) < 16:
		fail("FORMQ_NEXT_REVALIDATE_SECRET", "is required with FORMQ_NEXT_REVALIDATE_URL (whsec_ base64, or at least 16 characters)")
	case (c.CloudflareAPIToken == "") != (c.CloudflareZoneID == ""):
		fail("FORMQ_CLOUDFLARE_ZONE_ID", "must be set together with FORMQ_CLOUDFLARE_API_TOKEN")
	case c.CloudflareZoneID != "" && c.SiteURL == "":
		fail("FORMQ_SITE_URL", "is required with FORMQ_CLOUDFLARE_ZONE_ID (Cloudflare purges absolute URLs)")
	case (c.FastlyAPIKey == "") != (c.FastlyServiceID == ""):
		fail("FORMQ_FASTLY_SERVICE_ID", "must be set together with FORMQ_FASTLY_API_KEY")
	case c.AuthHS256Key != "" && len(c.AuthHS256Key) < 32:
		fail("FORMQ_AUTH_HS256_SECRET", "must be at least 32 characters")
	case c.EventsToken != "" && len(c.EventsToken) < 32 && c.Env != "development":
		fail("FORMQ_EVENTS_TOKEN", "must be at least 32 characters outside development")
	case c.AdminToken != "" && len(c.AdminToken) < 32 && c.Env != "development":
		fail("FORMQ_ADMIN_TOKEN", "must be at least 32 characters outside development")
	case c.Secret == "" && c.Env != "development":
		fail("FORMQ_SECRET", "is required outside development (FORMQ_ENV=development)")
	case c.UploadMemory < 2*c.UploadPartSize:
		fail("FORMQ_UPLOAD_MEMORY", "must hold at least two upload parts (2 x FORMQ_UPLOAD_PART_SIZE)")
	case c.RedisMinReplicas > 0 && c.RedisReplicaTimeout <= 0:
		fail("FORMQ_REDIS_REPLICA_TIMEOUT", "must be a duration like 1s with FORMQ_REDIS_MIN_REPLICAS")
	case c.UploadPartSize < 5<<20:
		fail("FORMQ_UPLOAD_PART_SIZE", "must be at least 5MB (the S3 minimum part size)")
	}
	if c.Secret != "" {
		for sec := range strings.SplitSeq(c.Secret, ",") {
			if len(strings.TrimSpace(sec)) < 32 {
				fail("FORMQ_SECRET", "must be at least 32 characters (a comma list rotates: newest first)")
			}
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		fail("FORMQ_LOG_LEVEL", "must be debug, info, warn or error")
	}
	if c.WaitMax < 0 {
		fail("FORMQ_WAIT_MAX", "must be 0 (answer every wait: action at once) or more")
	}
	if c.TusClientUploads < 1 {
		fail("FORMQ_TUS_CLIENT_UPLOADS", "must be 1 or more")
	}
	if len(problems) > 0 {
		return problems[0]
	}
	return nil
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
	fields := settingFields()
	attrs := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		key := strings.ToLower(strings.TrimPrefix(f.Tag.Get("env"), "FORMQ_"))
		field := v.FieldByIndex(f.Index)
		val := field.Interface()
		switch s, isString := val.(string); {
		case f.Tag.Get("secret") == "true":
			if !field.IsZero() {
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
