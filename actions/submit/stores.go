package handler

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

var _ FileStore = (*uploads.Store)(nil)
