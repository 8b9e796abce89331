// Package next is the built-in sinks that post every revalidation event,
// signed like the webhooks (Standard Webhooks headers, webhook-id
// evt_{submission}), to an app's revalidation route: a Next.js route
// that calls revalidatePath and revalidateTag. NewRevalidate is the one
// FORMQ_REVALIDATE_URL configures, NewSink one per
// FORMQ_NEXT_REVALIDATE_URL. Only the worker links it.
package next

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/jobs/step/webhook"
	"github.com/formq/formq/submission"
)

// route is one signed revalidation route.
type route struct {
	url    string
	secret []byte
	client *webhook.Client
}

// newRoute checks a route's URL and secret: whsec_ base64 or a plain
// string of at least 16 characters.
func newRoute(rawURL, secret string, client *webhook.Client) (*route, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("revalidation URL %q: want an http or https URL", step.RedactURL(rawURL))
	}
	key, err := builtin.ParseSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("revalidation secret: %w", err)
	}
	return &route{url: rawURL, secret: key, client: client}, nil
}

// deliver posts one event; the body is the event as GET /events sends it.
func (r *route) deliver(ctx context.Context, ev submission.Event, key string) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return step.Permanent("encode the event: %v", err)
	}
	return r.client.Deliver(ctx, webhook.Delivery{URL: r.url, ID: key, Secret: r.secret, Body: body})
}

// NewRevalidate is the revalidation webhook (FORMQ_REVALIDATE_URL and
// FORMQ_REVALIDATE_SECRET), the step type "revalidate": give it first
// among the sinks, as formq's worker does. client posts it.
func NewRevalidate(rawURL, secret string, client *webhook.Client) (step.Sink, error) {
	r, err := newRoute(rawURL, secret, client)
	if err != nil {
		return step.Sink{}, err
	}
	return step.Sink{Name: "revalidate", Timeout: 15 * time.Second, Purge: r.deliver}, nil
}

// NewSink posts every event to one Next.js on-demand revalidation route,
// the step type "next", each request in a client span; configure one sink
// per app instance.
func NewSink(rawURL, secret string, client *webhook.Client) (step.Sink, error) {
	r, err := newRoute(rawURL, secret, client)
	if err != nil {
		return step.Sink{}, err
	}
	return step.Sink{
		Name: "next", Timeout: 15 * time.Second,
		Purge: func(ctx context.Context, ev submission.Event, key string) error {
			ctx, span := step.StartRequestSpan(ctx, "next", http.MethodPost, r.url, key)
			defer span.End()
			err := r.deliver(ctx, ev, key)
			step.EndRequestSpan(span, 0, err)
			return err
		},
	}, nil
}
