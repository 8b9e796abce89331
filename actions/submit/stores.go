package submit

import (
	"context"
	"io"

	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
)

// FileStore keeps uploaded files. *uploads.Store is the implementation.
type FileStore interface {
	Put(ctx context.Context, key string, src io.Reader, o uploads.PutOptions) (uploads.Object, error)
	Delete(ctx context.Context, keys ...string) error
}

// Enqueuer hands an accepted submission to the worker fleet. Enqueue
// returns only once the task is durably queued.
type Enqueuer interface {
	Enqueue(ctx context.Context, s *submission.Submission) error
}

// ObjectStore is what upload references and kept files need of the
// store, beyond FileStore.
type ObjectStore interface {
	FileStore
	Snapshot(ctx context.Context, key string) (uploads.Snapshot, error)
	Copy(ctx context.Context, from string, obj uploads.Object) error
	CopyChecked(ctx context.Context, from, etag string, obj uploads.Object) error
}

var (
	_ FileStore   = (*uploads.Store)(nil)
	_ ObjectStore = (*uploads.Store)(nil)
)
