package web

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/formq/formq/actions"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Rejection reasons: why a submission was turned away before validation
// or a file was refused. They are the values of the reason label.
const (
	RejectOrigin    = "origin"
	RejectRateLimit = "rate_limit"
	RejectHoneypot  = "honeypot"
	RejectSize      = "size"
	RejectType      = "type"
	RejectTooFast   = "too_fast" // posted faster than min_fill_time
	RejectCaptcha   = "captcha"  // the captcha answer was refused
	RejectSpam      = "spam"     // scored as spam under spam: {on_spam: drop}
	// RejectDependencyDown: refused with 503 while Redis or S3 is down.
	RejectDependencyDown = "dependency_down"
)

// unknownAction labels requests for names no action has, so that probing
// random names cannot grow the label set.
const unknownAction = "unknown"

// Metrics are the API's Prometheus series. Every label is bounded: action
// names come from the actions file, fields from their declarations,
// reasons from the constants above; never ids or values. A nil *Metrics
// records nothing, so handlers built without it (tests) still work.
type Metrics struct {
	gatherer prometheus.Gatherer
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	uploaded *prometheus.CounterVec
	invalid  *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

// NewMetrics registers the API's series on reg and serves reg's series
// (including any other collectors on it) from Handler.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		gatherer: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formq_action_requests_total",
			Help: "Submissions to POST /actions/{name}, by action and HTTP status.",
		}, []string{"action", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "formq_action_request_duration_seconds",
			Help:    "Time to answer a submission (uploads included), by action.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"action"}),
		uploaded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formq_upload_bytes_total",
			Help: "Bytes of files stored in S3, by action.",
		}, []string{"action"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formq_validation_failures_total",
			Help: "Fields that failed validation, by action and field.",
		}, []string{"action", "field"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formq_rejections_total",
			Help: "Submissions or files turned away, by action and reason (origin, rate_limit, honeypot, size, type, dependency_down).",
		}, []string{"action", "reason"}),
	}
	reg.MustRegister(m.requests, m.duration, m.uploaded, m.invalid, m.rejected)
	return m
}

// Handler serves the registry's series in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{})
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// Middleware counts and times the submissions of known actions. known
// reports whether a name is declared; other names count as "unknown".
// Errors are rendered here through the central error handler so that the
// status is the one the client gets.
func (m *Metrics) Middleware(known func(name string) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if m == nil || c.Request().Method != http.MethodPost || c.Path() != "/actions/:name" {
				return next(c)
			}
			start := time.Now()
			action := c.Param("name")
			if !known(action) {
				action = unknownAction
			}
			err := next(c)
			if err != nil {
				if reason := rejectionReason(err); reason != "" {
					m.ObserveRejection(action, reason)
				}
				var e *Error
				if errors.As(err, &e) && e.Code == ErrValidation.Code && e.Action != nil {
					m.ObserveValidation(e.Action, e.Fields)
				}
				c.Error(err)
			}
			m.requests.WithLabelValues(action, strconv.Itoa(c.Response().Status)).Inc()
			m.duration.WithLabelValues(action).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}

// rejectionReason maps the contract errors that turn a whole submission
// away to their reason label; "" for the others.
func rejectionReason(err error) string {
	switch {
	case errors.Is(err, ErrForbiddenOrigin):
		return RejectOrigin
	case errors.Is(err, ErrRateLimited):
		return RejectRateLimit
	case errors.Is(err, ErrPayloadTooLarge):
		return RejectSize
	case errors.Is(err, ErrUnsupportedMedia):
		return RejectType
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return RejectSize
	}
	return ""
}

// ObserveUpload counts n bytes of a file stored for action.
func (m *Metrics) ObserveUpload(action string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.uploaded.WithLabelValues(action).Add(float64(n))
}

// ObserveValidation counts the fields of a failed validation. Names that
// are neither a field nor an upload of a are counted as "other".
func (m *Metrics) ObserveValidation(a *actions.Action, errs actions.FieldErrors) {
	if m == nil {
		return
	}
	for name := range errs {
		if a.Field(name) == nil && a.Upload(name) == nil {
			name = "other"
		}
		m.invalid.WithLabelValues(a.Name, name).Inc()
	}
}

// ObserveRejection counts one submission or file of action turned away
// for reason, one of the Reject constants.
func (m *Metrics) ObserveRejection(action, reason string) {
	if m == nil {
		return
	}
	m.rejected.WithLabelValues(action, reason).Inc()
}
