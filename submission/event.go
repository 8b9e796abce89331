package submission

import (
	"context"
	"errors"
	"time"
)

// EventType is the type of every revalidation event.
const EventType = "revalidate"

// Event tells subscribers what an accepted submission made stale, once
// the worker fleet is done with it. It is the JSON of each message of
// GET /events, of the Redis stream and channel, and of the revalidation
// webhook.
type Event struct {
	ID         string    `json:"id,omitempty"` // the stream id, also the SSE id
	Type       string    `json:"type"`
	Action     string    `json:"action"`
	Submission string    `json:"submission"`
	Paths      []string  `json:"paths"`
	Tags       []string  `json:"tags"`
	At         time.Time `json:"at"`
}

// Published is an event as a subscriber receives it: decoded, for
// filters, and encoded once, shared by every subscriber.
type Published struct {
	Event
	JSON []byte
}

// Subscription is one subscriber's revalidation events.
type Subscription interface {
	// Next waits for the next event. It fails when ctx ends or when the
	// subscription ended (ErrSubscriptionEnded): the feed stopped, or the
	// subscriber fell too far behind; it reconnects with the last id it
	// saw and loses nothing.
	Next(ctx context.Context) (*Published, error)
	// Close ends the subscription.
	Close()
}

// StatusWatch tells one subscriber when a submission's status changed.
type StatusWatch interface {
	// Changed receives a value after each change (changes in a burst may
	// come as one). It is closed when the watch ended: the feed stopped or
	// Close was called.
	Changed() <-chan struct{}
	// Close ends the watch.
	Close()
}

// ErrSubscriptionEnded is returned by Subscription.Next when the feed
// dropped the subscriber.
var ErrSubscriptionEnded = errors.New("submission: event subscription ended")
