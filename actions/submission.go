package actions

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/formq/formq/uploads"
)

// Submission is the record of one accepted submission: what the worker
// receives in its task and stores as JSON in S3. Sensitive field values
// are never part of it.
type Submission struct {
	ID         string         `json:"id"`
	Action     string         `json:"action"`
	Values     map[string]any `json:"values"`
	Files      []File         `json:"files"`
	Bound      map[string]any `json:"bound,omitempty"`
	Subject    string         `json:"subject,omitempty"`
	ClientIP   string         `json:"clientIp,omitempty"`
	UserAgent  string         `json:"userAgent,omitempty"`
	RequestID  string         `json:"requestId,omitempty"`
	ReceivedAt time.Time      `json:"receivedAt"`
	Queue      string         `json:"queue"`
	Steps      []Step         `json:"steps,omitempty"`
	Revalidate Revalidate     `json:"revalidate"`
}

// File is one stored upload of a submission.
type File struct {
	Field string `json:"field"`
	uploads.Object
}

// RecordKey is the S3 key of a submission's record.
func RecordKey(action, id string) string { return "submissions/" + action + "/" + id + ".json" }

// UploadKey is the S3 key of the n-th file of a field.
func UploadKey(action, id, field string, n int) string {
	return "uploads/" + action + "/" + id + "/" + field + "/" + strconv.Itoa(n)
}

// FileStore keeps uploaded files. *uploads.Store is the implementation.
type FileStore interface {
	Put(ctx context.Context, key string, src io.Reader, o uploads.PutOptions) (uploads.Object, error)
	Delete(ctx context.Context, keys ...string) error
}

// Enqueuer hands an accepted submission to the worker fleet. Enqueue
// returns only once the task is durably queued.
type Enqueuer interface {
	Enqueue(ctx context.Context, s *Submission) error
}

var _ FileStore = (*uploads.Store)(nil)
