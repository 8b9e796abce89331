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
	// StatusRejected is a submission the app refused (a step answered
	// with field errors): final, like a validation failure that came
	// later. Its files are kept as staged uploads for the resend.
	StatusRejected = "rejected"
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
	// StepRejected is the step whose app refused the submission.
	StepRejected = "rejected"
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
	Answer
}

// Answer is what the app's steps answered the person who submitted: the
// named steps' data once completed; the field errors, form message and
// kept files once rejected.
type Answer struct {
	// Data holds, by step name, what named steps answered.
	Data map[string]map[string]string `json:"data,omitempty"`
	// Errors are the app's field errors of a rejected submission, by
	// declared field name.
	Errors map[string][]string `json:"errors,omitempty"`
	// Message is the form-level message of a rejected submission; of a
	// completed one, the action's message with the data filled in (set
	// by the API).
	Message string `json:"message,omitempty"`
	// Redirect is where a completed submission sends the person, with
	// the data filled in (set by the API).
	Redirect string `json:"redirect,omitempty"`
	// Kept are a rejected submission's files, sealed for the resend by
	// the API from Staged.
	Kept map[string][]KeptFile `json:"kept,omitempty"`
	// Staged are the staged copies of a rejected submission's files,
	// as the worker kept them; never shown.
	Staged []StagedFile `json:"-"`
}

// KeptFile is a file of a refused submission kept as a staged upload:
// sent as the upload field's value, Ref attaches it again.
type KeptFile struct {
	Ref         string `json:"ref"`
	Filename    string `json:"filename"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
}

// StagedFile is a file of a rejected submission copied to a staged key
// (StagedKey) so a reference can attach it to the resend.
type StagedFile struct {
	File
	Staged string `json:"staged"`
}

// Done reports whether the submission reached a final state.
func (s *Status) Done() bool {
	return s.Status == StatusCompleted || s.Status == StatusFailed || s.Status == StatusRejected || s.Status == StatusSpam
}

// StepStatus is the progress of one follow-up step.
type StepStatus struct {
	Type string `json:"type"`
	// Name is the step's name: name: in the actions file.
	Name      string `json:"name,omitempty"`
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
