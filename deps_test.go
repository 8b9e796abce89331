package formq_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEachBinaryLinksOnlyItsSide keeps the API and the worker apart: the
// worker links no HTTP framework, JWT, rate-limit or dashboard code, and
// the API no image decoding or SMTP code.
func TestEachBinaryLinksOnlyItsSide(t *testing.T) {
	for _, tt := range []struct {
		pkg       string
		forbidden []string
	}{
		{"./cmd/worker", []string{"github.com/labstack/echo", "github.com/golang-jwt/jwt", "github.com/MicahParks/keyfunc", "github.com/go-redis/redis_rate", "github.com/hibiken/asynqmon", "github.com/formq/formq/actions/handler"}},
		{"./cmd/api", []string{"image", "golang.org/x/image", "net/smtp", "github.com/wneessen/go-mail", "github.com/formq/formq/jobs/images", "github.com/formq/formq/jobs/smtp", "github.com/formq/formq/worker"}},
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
