package step

import (
	"context"
	"time"

	"github.com/formq/formq/submission"
)

// Sink is one place a revalidation event goes besides Redis: a CDN purge
// (Cloudflare, Fastly) or an app's revalidation route (Next.js). Each
// configured sink is a step of its own at the end of every submission, so
// it has its own attempts, backoff and state in the submission's status,
// a finished sink is never run again, and a failing one never holds up
// the others. Its settings come from the operator (environment, Go), not
// from the actions file, so it is checked when it is built.
type Sink struct {
	// Name is the step type shown in the status and the metrics
	// (cloudflare, fastly, next).
	Name string
	// Purge tells the receiver of one event. key is the same on every
	// attempt for one event and sink: receivers that honour idempotency
	// keys drop repeats with it. Errors are read as a step's (Permanent,
	// Skip, anything else retried).
	Purge func(ctx context.Context, ev submission.Event, key string) error
	// Defaults of the step options; zero takes the package default.
	Timeout     time.Duration
	MaxAttempts int
	Backoff     time.Duration
}

// deliveryLogKey carries a step's delivery log to code that does not see
// the Run (a sink's Purge).
type deliveryLogKey struct{}

// WithDeliveryLog makes fn the delivery log of the webhook deliveries
// made with ctx: the worker gives each sink's Purge such a context.
func WithDeliveryLog(ctx context.Context, fn func(submission.DeliveryAttempt)) context.Context {
	if fn == nil {
		return ctx
	}
	return context.WithValue(ctx, deliveryLogKey{}, fn)
}

// DeliveryLog is the delivery log WithDeliveryLog put in ctx, or nil.
func DeliveryLog(ctx context.Context) func(submission.DeliveryAttempt) {
	fn, _ := ctx.Value(deliveryLogKey{}).(func(submission.DeliveryAttempt))
	return fn
}
