package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsMiddlewareLabels checks the series a submission leaves, by
// what its handler returned: the status the client got, the rejection
// reason, and bounded labels for unknown actions and fields.
func TestMetricsMiddlewareLabels(t *testing.T) {
	list, err := actions.Parse("metrics.yaml", []byte("actions:\n  contact:\n    fields:\n      email: {type: email, required: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := list[0]
	cases := []struct {
		name, action string
		err          error
		status       string
		reason       string
	}{
		{"accepted", "contact", nil, "202", ""},
		{"origin", "contact", ErrForbiddenOrigin, "403", RejectOrigin},
		{"rate limit", "contact", ErrRateLimited.With(nil), "429", RejectRateLimit},
		{"too large", "contact", ErrPayloadTooLarge, "413", RejectSize},
		{"body over limit", "contact", &http.MaxBytesError{Limit: 10}, "413", RejectSize},
		{"media type", "contact", ErrUnsupportedMedia, "415", RejectType},
		{"validation", "contact", ErrValidation.WithForm(a, actions.FieldErrors{"email": {"bad"}, "_bound": {"x"}}, nil), "422", ""},
		{"unknown action", "no-such-action-" + strings.Repeat("x", 10), ErrActionNotFound, "404", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			e := echo.New()
			e.HTTPErrorHandler = func(err error, c echo.Context) { _ = c.NoContent(AsError(err).Status) }
			e.Use(m.Middleware(func(name string) bool { return name == "contact" }))
			e.POST("/actions/:name", func(c echo.Context) error {
				if tc.err != nil {
					return tc.err
				}
				return c.NoContent(http.StatusAccepted)
			})
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/actions/"+tc.action, nil))

			label := tc.action
			if label != "contact" {
				label = "unknown"
			}
			if got := testutil.ToFloat64(m.requests.WithLabelValues(label, tc.status)); got != 1 {
				t.Errorf("requests{action=%q,status=%q} = %v, want 1 (answered %d)", label, tc.status, got, rec.Code)
			}
			if n := testutil.CollectAndCount(m.requests); n != 1 {
				t.Errorf("%d request series, want 1", n)
			}
			wantRejections := 0
			if tc.reason != "" {
				wantRejections = 1
				if got := testutil.ToFloat64(m.rejected.WithLabelValues(label, tc.reason)); got != 1 {
					t.Errorf("rejections{reason=%q} = %v, want 1", tc.reason, got)
				}
			}
			if n := testutil.CollectAndCount(m.rejected); n != wantRejections {
				t.Errorf("%d rejection series, want %d", n, wantRejections)
			}
			if tc.name == "validation" {
				if testutil.ToFloat64(m.invalid.WithLabelValues("contact", "email")) != 1 || testutil.ToFloat64(m.invalid.WithLabelValues("contact", "other")) != 1 {
					t.Error("validation failures: want email and other (an undeclared name) counted once each")
				}
			}
		})
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.ObserveUpload("a", 10)
	m.ObserveRejection("a", RejectHoneypot)
	m.ObserveValidation(&actions.Action{Name: "a"}, actions.FieldErrors{"x": {"y"}})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET /metrics with nil metrics: %d", rec.Code)
	}
	if err := errors.New("x"); rejectionReason(err) != "" {
		t.Error("a plain error has a rejection reason")
	}
}
