// Package submission is formq's domain: an accepted submission, its files,
// the follow-up steps it asks for, its status while the worker fleet runs
// them, the revalidation event published when it is done, and where all of
// it is kept in S3 and Redis. It imports nothing but the standard library,
// so the API, the worker and code embedding formq share it without pulling
// in each other's dependencies.
//
// A Submission is what the API accepted: the form's values, its stored
// Files, the Request it came in, the Steps its action declares and the
// Revalidate paths and tags. The worker keeps it as JSON under RecordKey
// and reports its progress as a Status (one StepStatus per step), which
// GET /submissions/{id} answers. When it is done, an Event is published
// on the events stream and told to every sink. The ...Key functions are
// the storage layout: where uploads, records, staged and resumable
// uploads live in S3, and the Redis keys of status, idempotency, rate
// limits and the inbox index (IndexEntry, Query, Page).
package submission

import "time"

// Submission is the record of one accepted submission: what the worker
// receives in its task and stores as JSON in S3. Sensitive field values
// (passwords) are never part of it.
type Submission struct {
	ID         string         `json:"id"`
	Action     string         `json:"action"`
	Values     map[string]any `json:"values"`
	Files      []File         `json:"files"`
	Bound      map[string]any `json:"bound,omitempty"`
	Subject    string         `json:"subject,omitempty"`
	Request                   // its keys sit in the record's own object
	ReceivedAt time.Time      `json:"receivedAt"`
	Queue      string         `json:"queue"`
	Steps      []Step         `json:"steps,omitempty"`
	Revalidate Revalidate     `json:"revalidate"`
	// Spam is the verdict of the spam check (actions with spam:); nil
	// when the action has none.
	Spam *Spam `json:"spam,omitempty"`
}

// Request is where a submission came from: the client's address (from
// X-Forwarded-For behind a trusted proxy), its user agent and the id of
// the HTTP request, which the API's access log line carries too.
type Request struct {
	ClientIP  string `json:"clientIp,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

// Object is one file stored in S3: its key, size, sniffed type, SHA-256
// (hex) and the client's sanitised file name.
type Object struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	SHA256      string `json:"sha256"`
	Filename    string `json:"filename,omitempty"`
}

// File is one stored upload of a submission, with the form field it came
// from.
type File struct {
	Field string `json:"field"`
	Object
}

// ThumbnailStep is the type name of the built-in step making image
// variants, and ThumbnailTypes the content types it decodes (jobs/images
// registers exactly these decoders; a test there keeps the two equal). An
// actions file whose thumbnail step reads an upload field accepting any
// other type does not load, so HEIC, AVIF or SVG never fail at run time.
const ThumbnailStep = "thumbnail"

// ThumbnailTypes: see ThumbnailStep.
var ThumbnailTypes = []string{"image/gif", "image/jpeg", "image/png", "image/webp"}

// Step is one follow-up unit of work the worker runs after acceptance, as
// declared in the action: its type and that type's settings.
type Step struct {
	Type   string         `json:"type"`
	Config map[string]any `json:"config,omitempty"`
}

// StepCheck validates the settings of one step type when an actions file
// loads, so a typo stops the process at start instead of failing every
// submission later.
type StepCheck func(config map[string]any) error

// Revalidate lists what an accepted submission makes stale: page paths
// and cache tags. In an action's declaration {id} and {field} placeholders
// expand per submission.
type Revalidate struct {
	Paths []string `json:"paths"`
	Tags  []string `json:"tags"`
	// Public events reach subscribers of GET /events without a token,
	// without the submission id; other events need FORMQ_EVENTS_TOKEN.
	Public bool `json:"public,omitempty"`
}

// Queues are the worker queues an action may choose, most urgent first,
// with the share of worker time each gets.
var Queues = []string{"critical", "default", "low"}

// QueueWeights are the relative priorities of Queues.
var QueueWeights = map[string]int{"critical": 6, "default": 3, "low": 1}

// DefaultQueue is the queue of an action that names none.
const DefaultQueue = "default"

// WaitQueue carries the submissions of actions whose answer waits for
// their steps (wait:): someone is waiting, so they go ahead of every
// other queue, and workers look for them every few milliseconds instead
// of every 100 ms.
const WaitQueue = "waiting"

// AllQueues are every queue formq's workers take submissions from:
// WaitQueue, then Queues.
var AllQueues = append([]string{WaitQueue}, Queues...)
