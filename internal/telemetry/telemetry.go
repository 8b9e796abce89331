// Package telemetry is formq's observability plumbing shared by the API
// and the worker: JSON logs that carry the request, submission and trace
// ids found in the context; OpenTelemetry tracing exported over OTLP/HTTP
// when FORMQ_OTEL_ENDPOINT is set; and the W3C trace context carried from
// an API request into the worker through the asynq task's headers.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ErrEndpoint marks an unusable FORMQ_OTEL_ENDPOINT.
var ErrEndpoint = errors.New("telemetry: bad OTLP endpoint")

// Tracing is one process's tracer provider and its shutdown. Without an
// endpoint it is a no-op provider that records nothing and costs nearly
// nothing.
type Tracing struct {
	provider trace.TracerProvider
	shutdown func(context.Context) error
}

// NewTracing exports the spans of service (formq-api, formq-worker) to the
// OTLP/HTTP collector at endpoint, like http://otel-collector:4318. An
// endpoint without a path gets the standard /v1/traces; one with a path is
// used as it is. An empty endpoint turns tracing off.
func NewTracing(ctx context.Context, endpoint, service string) (*Tracing, error) {
	if endpoint == "" {
		return &Tracing{provider: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }}, nil
	}
	target, err := TracesURL(endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(target))
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", service)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{provider: tp, shutdown: tp.Shutdown}, nil
}

// NewTracingWith uses a provider made elsewhere (tests use an in-memory
// exporter). Shutdown leaves it running; its owner stops it.
func NewTracingWith(tp trace.TracerProvider) *Tracing {
	return &Tracing{provider: tp, shutdown: func(context.Context) error { return nil }}
}

// TracesURL is where spans are posted for a FORMQ_OTEL_ENDPOINT value.
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: %q, want a URL like http://otel-collector:4318", ErrEndpoint, endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Tracer returns the tracer of one instrumented part (formq/api,
// formq/jobs).
func (t *Tracing) Tracer(name string) trace.Tracer { return t.provider.Tracer(name) }

// Shutdown flushes the spans not yet exported, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }
