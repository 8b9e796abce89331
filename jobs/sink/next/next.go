package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/formq/formq/submission"
)

// Revalidator posts every revalidation event to one URL, signed like the
// webhooks: a Next.js-style route that calls revalidatePath and
// revalidateTag (FORMQ_REVALIDATE_URL and FORMQ_REVALIDATE_SECRET).
type Revalidator struct {
	url    string
	secret []byte
	client *WebhookClient
}

// NewRevalidator builds the revalidation webhook; secret is whsec_ base64
// or a plain string of at least 16 characters.
func NewRevalidator(rawURL, secret string, client *WebhookClient) (*Revalidator, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("revalidation URL %q: want an http or https URL", redactURL(rawURL))
	}
	key, err := ParseSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("revalidation secret: %w", err)
	}
	return &Revalidator{url: rawURL, secret: key, client: client}, nil
}

// stepType is the revalidation webhook of one event, run as the last step
// of a submission. The body is the event as GET /events sends it.
func (r *Revalidator) stepType(ev submission.Event) StepType {
	return StepType{
		Timeout: 15 * time.Second,
		Run: func(ctx context.Context, run StepRun) error {
			body, err := json.Marshal(ev)
			if err != nil {
				return Permanent("encode the event: %v", err)
			}
			return r.client.Deliver(ctx, Delivery{URL: r.url, ID: "evt_" + run.Submission.ID, Secret: r.secret, Body: body, Log: run.LogDelivery})
		},
	}
}
