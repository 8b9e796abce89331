package submission

import (
	"errors"
	"time"
)

// States of a submission, as GET /submissions/{id} reports them.
const (
	StatusQueued     = "queued"
	StatusProcessing = "processing"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
)

// States of one step within a submission's status.
const (
	StepPending   = "pending"
	StepRunning   = "running"
	StepRetrying  = "retrying" // failed, waits for its next attempt
	StepCompleted = "completed"
	StepFailed    = "failed"
	// StepSkipped is a step that chose not to act (an autoresponder over
	// its recipient's limit); like completed, it is never run again.
	StepSkipped = "skipped"
)

// StepFinished reports whether a step in this state is done for good
// without failing: completed or skipped.
func StepFinished(state string) bool { return state == StepCompleted || state == StepSkipped }

// ErrNotFound means no submission has the id (or its status expired).
var ErrNotFound = errors.New("submission not found")

// Status is what the worker fleet has done with a submission. It is the
// JSON of GET /submissions/{id} under "submission" and of every message
// of the submission's status stream.
type Status struct {
	ID        string       `json:"id"`
	Action    string       `json:"action"`
	Status    string       `json:"status"`
	StatusURL string       `json:"statusUrl"`
	Files     []File       `json:"files"`
	Steps     []StepStatus `json:"steps"`
	Error     string       `json:"error,omitempty"` // why it failed, for people
	Event     string       `json:"event,omitempty"` // the revalidation event's stream id, once published
	UpdatedAt time.Time    `json:"updatedAt"`
	// Version grows with every change; the status stream sends a new
	// message when it does.
	Version int64 `json:"version"`
}

// Done reports whether the submission reached a final state.
func (s *Status) Done() bool {
	return s.Status == StatusCompleted || s.Status == StatusFailed
}

// StepStatus is the progress of one follow-up step.
type StepStatus struct {
	Type      string `json:"type"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError,omitempty"`
	// Note says why a step was skipped.
	Note string `json:"note,omitempty"`
	// Deliveries are the last attempts of a webhook-like step, oldest
	// first (at most DeliveryLogSize); the admin's view only.
	Deliveries []DeliveryAttempt `json:"deliveries,omitempty"`
}

// DeliveryLogSize is how many delivery attempts a step keeps in its log.
const DeliveryLogSize = 20

// DeliveryAttempt is one attempt to deliver a webhook: when, where (the
// URL without query or credentials), the answer's HTTP status (0 when
// none came), how long it took and why it failed.
type DeliveryAttempt struct {
	At        time.Time `json:"at"`
	URL       string    `json:"url"`
	WebhookID string    `json:"webhookId"`
	Status    int       `json:"status"`
	LatencyMS int64     `json:"latencyMs"`
	Error     string    `json:"error,omitempty"`
}
