package step

import (
	"context"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// StartRequestSpan opens the client span of one request a sink makes, a
// child of the step's span. The tracer is the one that made the span in
// ctx (the worker's, exporting when FORMQ_OTEL_ENDPOINT is set); with no
// span in ctx it records nothing. End it with EndRequestSpan and End.
func StartRequestSpan(ctx context.Context, sink, method, endpoint, key string) (context.Context, trace.Span) {
	tracer := trace.SpanFromContext(ctx).TracerProvider().Tracer("formq/jobs")
	attrs := []attribute.KeyValue{
		attribute.String("formq.sink", sink),
		attribute.String("formq.idempotency_key", key),
		attribute.String("http.request.method", method),
		attribute.String("url.full", RedactURL(endpoint)),
	}
	if u, err := url.Parse(endpoint); err == nil {
		attrs = append(attrs, attribute.String("server.address", u.Hostname()))
	}
	return tracer.Start(ctx, sink+" "+method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// EndRequestSpan records the answer's status (0: none read) and the
// error, if any, on a request's span.
func EndRequestSpan(span trace.Span, status int, err error) {
	if status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, ErrorText(err))
	}
}

// RedactURL drops credentials and the query, which may hold tokens, from
// URLs shown in errors and spans.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
