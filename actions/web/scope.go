package web

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// quietRoutes are polled by probes and scrapers; their request lines are
// logged at debug level only.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// RequestScope opens the scope of one API request: a log scope carrying
// its request id (set by echo's RequestID middleware, which must run
// first), a server span continuing the caller's W3C trace context, and one
// log line when the request is answered. Errors are rendered here through
// the central error handler (c.Error), so the status is known to the span
// and the log line.
func RequestScope(tracer trace.Tracer, log *slog.Logger) echo.MiddlewareFunc {
	return RequestScopeSampled(tracer, log, 1)
}

// RequestScopeSampled is RequestScope writing the request line of one in
// every sampleOK answers below 400 (all of them at 1, the default);
// answers of 400 and above are always logged,
// and so are the other lines of a request.
func RequestScopeSampled(tracer trace.Tracer, log *slog.Logger, sampleOK int) echo.MiddlewareFunc {
	sampleOK = max(sampleOK, 1)
	var answered atomic.Uint64
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			req := c.Request()
			route := c.Path()
			if route == "" {
				route = "unmatched" // no route: keep span names and labels bounded
			}
			ctx := telemetry.Propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
			ctx = telemetry.WithLogAttrs(ctx, slog.String(telemetry.KeyRequestID, c.Response().Header().Get(echo.HeaderXRequestID)))
			ctx, span := tracer.Start(ctx, req.Method+" "+route,
				trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("http.request.method", req.Method),
					attribute.String("http.route", route),
				))
			defer span.End()
			// The client, as formq resolves it, for its share of upload buffers.
			ctx = uploads.WithClient(ctx, c.RealIP())
			c.SetRequest(req.WithContext(ctx))

			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			level := slog.LevelInfo
			if quietRoutes[route] {
				level = slog.LevelDebug
			}
			if sampleOK > 1 && status < http.StatusBadRequest && answered.Add(1)%uint64(sampleOK) != 0 {
				return nil
			}
			log.LogAttrs(ctx, level, "request",
				slog.String("method", req.Method), slog.String("route", route),
				slog.Int("status", status), slog.Int64("bytes_in", req.ContentLength),
				slog.Float64("seconds", time.Since(start).Seconds()))
			return nil
		}
	}
}
