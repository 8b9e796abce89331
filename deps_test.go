package formq_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEachBinaryLinksOnlyItsSide keeps the API and the worker apart: the
// worker links no HTTP framework, JWT, rate-limit or dashboard code, nor
// any package of the API's HTTP layer; the API links no worker runtime
// and no step or sink implementation (webhook client and its SSRF guard,
// SMTP, image decoding, CDN purges), only the built-ins' settings checks
// (jobs/step/builtin).
func TestEachBinaryLinksOnlyItsSide(t *testing.T) {
	for _, tt := range []struct {
		pkg       string
		forbidden []string
	}{
		{"./cmd/worker", []string{"github.com/labstack/echo", "github.com/golang-jwt/jwt", "github.com/MicahParks/keyfunc", "github.com/go-redis/redis_rate", "github.com/hibiken/asynqmon",
			// The HTTP layer: the handlers and their feature packages, and
			// the API that mounts them (echo above catches any other).
			"github.com/formq/formq/actions/submit", "github.com/formq/formq/actions/staging", "github.com/formq/formq/actions/status",
			"github.com/formq/formq/actions/admin", "github.com/formq/formq/actions/pages", "github.com/formq/formq/actions/routes",
			"github.com/formq/formq/actions/web", "github.com/formq/formq/actions/captcha", "github.com/formq/formq/internal/redisstate",
			"github.com/formq/formq/api"}},
		{"./cmd/api", []string{"image", "golang.org/x/image", "net/smtp", "github.com/wneessen/go-mail", "code.dny.dev/ssrf",
			"github.com/formq/formq/jobs/step/webhook", "github.com/formq/formq/jobs/step/email", "github.com/formq/formq/jobs/step/thumbnail", "github.com/formq/formq/jobs/step/notify",
			"github.com/formq/formq/jobs/sink", "github.com/formq/formq/worker"}},
	} {
		out, err := exec.Command("go", "list", "-deps", tt.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", tt.pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 50 {
			t.Fatalf("go list -deps %s listed only %d packages", tt.pkg, len(deps))
		}
		for _, d := range deps {
			for _, f := range tt.forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s links %s", tt.pkg, d)
				}
			}
		}
	}
}
