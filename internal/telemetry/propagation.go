package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// Propagator carries the W3C trace context (traceparent, tracestate) and
// baggage across process boundaries: HTTP requests into the API and asynq
// task headers into the worker. It holds no state, so one value serves all.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// HeaderRequestID is the task header carrying the API's request id into
// the worker's log lines.
const HeaderRequestID = "formq-request-id"

// TaskHeaders returns the headers a task enqueued from ctx carries: the
// trace context and the request id of the log scope, if any. It is empty
// (not nil) when ctx has neither.
func TaskHeaders(ctx context.Context) map[string]string {
	h := map[string]string{}
	Propagator.Inject(ctx, propagation.MapCarrier(h))
	for _, a := range LogAttrs(ctx) {
		if a.Key == KeyRequestID {
			h[HeaderRequestID] = a.Value.String()
		}
	}
	return h
}

// FromTaskHeaders returns ctx with the remote trace context found in h,
// for the worker to continue the API's trace.
func FromTaskHeaders(ctx context.Context, h map[string]string) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.MapCarrier(h))
}
