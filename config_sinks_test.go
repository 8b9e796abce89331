package formq

import (
	"errors"
	"strings"
	"testing"
)

// The revalidation sinks' settings come in sets; a set left half done
// stops the process naming what is missing.
func TestSinkSettingsRefusedInOneLine(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"cloudflare token without zone", map[string]string{"FORMQ_CLOUDFLARE_API_TOKEN": "t", "FORMQ_SITE_URL": "https://www.example.com"}, "FORMQ_CLOUDFLARE_ZONE_ID: must be set together"},
		{"cloudflare without site URL", map[string]string{"FORMQ_CLOUDFLARE_API_TOKEN": "t", "FORMQ_CLOUDFLARE_ZONE_ID": "z"}, "FORMQ_SITE_URL: is required"},
		{"site URL not a URL", map[string]string{"FORMQ_SITE_URL": "www.example.com"}, "FORMQ_SITE_URL: must be a URL"},
		{"cloudflare API URL", map[string]string{"FORMQ_CLOUDFLARE_API_URL": "ftp://x"}, "FORMQ_CLOUDFLARE_API_URL"},
		{"fastly key without service", map[string]string{"FORMQ_FASTLY_API_KEY": "k"}, "FORMQ_FASTLY_SERVICE_ID: must be set together"},
		{"fastly API URL", map[string]string{"FORMQ_FASTLY_API_URL": "api.fastly.com"}, "FORMQ_FASTLY_API_URL"},
		{"next URL list", map[string]string{"FORMQ_NEXT_REVALIDATE_URL": "https://a.example/api/revalidate,b.example", "FORMQ_NEXT_REVALIDATE_SECRET": "0123456789abcdef"}, `FORMQ_NEXT_REVALIDATE_URL: has "b.example"`},
		{"next without secret", map[string]string{"FORMQ_NEXT_REVALIDATE_URL": "https://a.example/api/revalidate"}, "FORMQ_NEXT_REVALIDATE_SECRET: is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"FORMQ_S3_BUCKET": "b", "FORMQ_ENV": "development"}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := LoadConfig(func(k string) string { return env[k] })
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line with %q", err, tc.want)
			}
		})
	}
	c, err := LoadConfig(func(k string) string {
		return map[string]string{
			"FORMQ_S3_BUCKET": "b", "FORMQ_ENV": "development", "FORMQ_SITE_URL": "https://www.example.com/",
			"FORMQ_CLOUDFLARE_API_TOKEN": "t", "FORMQ_CLOUDFLARE_ZONE_ID": "z",
			"FORMQ_NEXT_REVALIDATE_URL": "https://a.example/api/revalidate, https://b.example/api/revalidate", "FORMQ_NEXT_REVALIDATE_SECRET": "0123456789abcdef",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.SiteURL != "https://www.example.com" || len(c.NextRevalidateURLs) != 2 || c.CloudflareAPIURL != "https://api.cloudflare.com/client/v4" {
		t.Errorf("site %q, next %q, cloudflare API %q", c.SiteURL, c.NextRevalidateURLs, c.CloudflareAPIURL)
	}
}
