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
)

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
}
