package formq

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaultsAndValues(t *testing.T) {
	env := map[string]string{
		"FORMQ_S3_BUCKET": "b", "FORMQ_SECRET": strings.Repeat("s", 32) + ", " + strings.Repeat("o", 32),
		"FORMQ_UPLOAD_PART_SIZE": "16MB", "FORMQ_SHUTDOWN_TIMEOUT": "5s", "FORMQ_STRICT_ORIGINS": "true",
		"FORMQ_ALLOWED_ORIGINS": "https://a.example/, http://b.example:8080", "FORMQ_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1",
		"FORMQ_WORKER_CONCURRENCY": "7", "FORMQ_PUBLIC_URL": "https://forms.example.com/",
	}
	c, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.RedisURL != "redis://127.0.0.1:6379/0" || c.S3Region != "us-east-1" || c.Actions != "actions.yaml" {
		t.Errorf("contract defaults: %+v", c)
	}
	if c.UploadPartSize != 16<<20 || c.ShutdownTimeout != 5*time.Second || !c.StrictOrigins || c.WorkerConcurrency != 7 {
		t.Errorf("values: %+v", c)
	}
	if len(c.AllowedOrigins) != 2 || c.AllowedOrigins[0] != "https://a.example" || len(c.TrustedProxies) != 2 || c.TrustedProxies[1] != "192.0.2.1/32" {
		t.Errorf("lists: %v %v", c.AllowedOrigins, c.TrustedProxies)
	}
	if c.PublicURL != "https://forms.example.com" {
		t.Errorf("public url %q", c.PublicURL)
	}
	if s := c.LogValue().String(); strings.Contains(s, strings.Repeat("s", 32)) {
		t.Errorf("secret logged: %s", s)
	}
}

func TestLogValueNamesEverySettingAndMasksSecrets(t *testing.T) {
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_S3_BUCKET": "b",
		"FORMQ_REDIS_URL":         "redis://:redispass@127.0.0.1:6379/0",
		"FORMQ_SMTP_URL":          "smtp://mailer:smtppass@mail.example.com:587",
		"FORMQ_S3_ACCESS_KEY":     "AKIAEXAMPLE",
		"FORMQ_S3_SECRET_KEY":     "s3secretvalue",
		"FORMQ_ADMIN_TOKEN":       "admintokenvalue",
		"FORMQ_AUTH_HS256_SECRET": strings.Repeat("h", 32),
		"FORMQ_SECRET":            strings.Repeat("z", 32),
	}
	c, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logged := c.LogValue().String()
	for _, secret := range []string{"redispass", "smtppass", "s3secretvalue", "admintokenvalue", strings.Repeat("h", 32), c.Secret} {
		if strings.Contains(logged, secret) {
			t.Errorf("%q logged in %s", secret, logged)
		}
	}
	for _, want := range []string{"s3_bucket=b", "s3_access_key=AKIAEXAMPLE", "auth_issuer=", "events_maxlen=100000", "log_level=info"} {
		if !strings.Contains(logged, want) {
			t.Errorf("%q missing from %s", want, logged)
		}
	}
}

func TestLoadRefusesBadSettingsInOneLine(t *testing.T) {
	base := map[string]string{"FORMQ_S3_BUCKET": "b", "FORMQ_ENV": "development"}
	tests := []struct{ name, value, want string }{
		{"FORMQ_S3_BUCKET", "", "FORMQ_S3_BUCKET"},
		{"FORMQ_ENV", "staging", "FORMQ_ENV"},
		{"FORMQ_REDIS_URL", "http://x", "FORMQ_REDIS_URL"},
		{"FORMQ_S3_ENDPOINT", "localhost:7070", "FORMQ_S3_ENDPOINT"},
		{"FORMQ_UPLOAD_PART_SIZE", "1MB", "FORMQ_UPLOAD_PART_SIZE"},
		{"FORMQ_UPLOAD_MEMORY", "lots", "FORMQ_UPLOAD_MEMORY"},
		{"FORMQ_WORKER_CONCURRENCY", "0", "FORMQ_WORKER_CONCURRENCY"},
		{"FORMQ_SHUTDOWN_TIMEOUT", "soon", "FORMQ_SHUTDOWN_TIMEOUT"},
		{"FORMQ_STRICT_ORIGINS", "maybe", "FORMQ_STRICT_ORIGINS"},
		{"FORMQ_ALLOWED_ORIGINS", "evil.example", "FORMQ_ALLOWED_ORIGINS"},
		{"FORMQ_TRUSTED_PROXIES", "10.0.0.0/99", "FORMQ_TRUSTED_PROXIES"},
		{"FORMQ_SECRET", "short", "FORMQ_SECRET"},
		{"FORMQ_AUTH_HS256_SECRET", "short", "FORMQ_AUTH_HS256_SECRET"},
		{"FORMQ_SMTP_URL", "http://mail", "FORMQ_SMTP_URL"},
		{"FORMQ_LOG_LEVEL", "loud", "FORMQ_LOG_LEVEL"},
		{"FORMQ_S3_ACCESS_KEY", "only-the-key", "FORMQ_S3_ACCESS_KEY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			env[tc.name] = tc.value
			_, err := LoadConfig(func(k string) string { return env[k] })
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line naming %s", err, tc.want)
			}
		})
	}
	t.Run("FORMQ_SECRET required in production", func(t *testing.T) {
		_, err := LoadConfig(func(k string) string { return map[string]string{"FORMQ_S3_BUCKET": "b"}[k] })
		if err == nil || !strings.Contains(err.Error(), "FORMQ_SECRET") {
			t.Fatalf("err = %v", err)
		}
	})
}

// A short admin token can be guessed; production refuses it.
func TestProductionRefusesShortAdminToken(t *testing.T) {
	env := map[string]string{"FORMQ_S3_BUCKET": "b", "FORMQ_SECRET": strings.Repeat("s", 32), "FORMQ_ADMIN_TOKEN": "admin"}
	_, err := LoadConfig(func(k string) string { return env[k] })
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "FORMQ_ADMIN_TOKEN") {
		t.Fatalf("short admin token in production: %v", err)
	}
	env["FORMQ_ADMIN_TOKEN"] = strings.Repeat("a", 32)
	if _, err := LoadConfig(func(k string) string { return env[k] }); err != nil {
		t.Fatalf("32-character admin token: %v", err)
	}
}

// Without FORMQ_SECRET, development has no key in the configuration (nor
// one from the source): the API seals with a random key of its own
// (seal.NewRandom, tested in internal/seal). A set FORMQ_SECRET is used as
// it is.
func TestDevelopmentSecretIsRandomPerProcess(t *testing.T) {
	env := map[string]string{"FORMQ_S3_BUCKET": "b", "FORMQ_ENV": "development"}
	a, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if a.Secret != "" {
		t.Fatalf("development without FORMQ_SECRET has the key %q: want none, the API draws its own", a.Secret)
	}
	env["FORMQ_SECRET"] = strings.Repeat("k", 32)
	if c, _ := LoadConfig(func(k string) string { return env[k] }); c.Secret != env["FORMQ_SECRET"] {
		t.Fatalf("a set FORMQ_SECRET must be used as it is: %q", c.Secret)
	}
}

// TestLoadReadsOnlyGetenv: the process's own environment is never read,
// even when getenv has nothing (caarlos0/env falls back to os.Environ for a
// nil map).
func TestLoadReadsOnlyGetenv(t *testing.T) {
	t.Setenv("FORMQ_S3_BUCKET", "from-os-environ")
	t.Setenv("FORMQ_ENV", "development")
	_, err := LoadConfig(func(string) string { return "" })
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "FORMQ_S3_BUCKET") {
		t.Fatalf("err = %v, want FORMQ_S3_BUCKET refused", err)
	}
}

func TestLoadSizesDurationsAndLists(t *testing.T) {
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_S3_BUCKET": " b ",
		"FORMQ_UPLOAD_MEMORY": "1GiB", "FORMQ_UPLOAD_PART_SIZE": "5242880",
		"FORMQ_JANITOR_INTERVAL": "0", "FORMQ_EVENTS_MAXLEN": "42",
		"FORMQ_TRUSTED_PROXIES": " 2001:db8::1 ,, 10.0.0.0/8 ", "FORMQ_ALLOWED_ORIGINS": ",",
	}
	c, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.S3Bucket != "b" || c.UploadMemory != 1<<30 || c.UploadPartSize != 5<<20 || c.JanitorInterval != 0 || c.EventsMaxLen != 42 {
		t.Errorf("values: %+v", c)
	}
	if want := []string{"2001:db8::1/128", "10.0.0.0/8"}; !slices.Equal(c.TrustedProxies, want) || len(c.AllowedOrigins) != 0 {
		t.Errorf("lists: %q %q, want %q and none", c.TrustedProxies, c.AllowedOrigins, want)
	}
	if c.UploadMemory.String() != "1GB" || c.UploadPartSize.String() != "5MB" || ByteSize(1000).String() != "1000" {
		t.Errorf("sizes print as %s, %s, %s", c.UploadMemory, c.UploadPartSize, ByteSize(1000))
	}
	for _, v := range []string{"1MB", "-3", "0"} {
		env["FORMQ_EVENTS_MAXLEN"] = v
		if _, err := LoadConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "FORMQ_EVENTS_MAXLEN: must be a positive integer") {
			t.Errorf("FORMQ_EVENTS_MAXLEN=%s: err = %v", v, err)
		}
	}
}
