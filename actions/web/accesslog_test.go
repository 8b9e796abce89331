package web_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/formq/formq/actions/web"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/trace/noop"
)

// With FORMQ_ACCESS_LOG_SAMPLE=3 one in three request lines of successful
// answers is written, and every one of an error.
func TestAccessLogSamplesSuccessesOnly(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	e := echo.New()
	e.Use(middleware.RequestID())
	e.Use(web.RequestScopeSampled(noop.NewTracerProvider().Tracer("test"), log, 3))
	e.GET("/ok", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/bad", func(c echo.Context) error { return echo.NewHTTPError(http.StatusUnprocessableEntity, "no") })
	get := func(path string) {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	for range 6 {
		get("/ok")
	}
	get("/bad")
	get("/bad")
	var ok, bad int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		switch {
		case strings.Contains(line, `"route":"/ok"`) && strings.Contains(line, `"status":200`):
			ok++
		case strings.Contains(line, `"route":"/bad"`) && strings.Contains(line, `"status":422`):
			bad++
		}
	}
	if ok != 2 || bad != 2 {
		t.Fatalf("request lines: %d of 6 successes (want 2), %d of 2 errors (want 2):\n%s", ok, bad, out.String())
	}
}
