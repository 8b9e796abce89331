package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
)

// FileLinks makes download links for stored files: presigned S3 GETs that
// need no credentials, so an app fetches a submission's files with nothing
// but the URL in the webhook. uploads.Store is one.
type FileLinks interface {
	PresignGet(ctx context.Context, key, filename string, ttl time.Duration) (string, error)
}

// payload is the body a webhook step posts: the submission record, with
// each file's download link and the time it stops working.
type payload struct {
	*submission.Submission
	Files []linkedFile `json:"files"`
}

// linkedFile is a file of the record with its download link.
type linkedFile struct {
	submission.File
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// payloadJSON is the submission record as a webhook step posts it: with
// links, made afresh for each attempt, valid for ttl; without them when
// links is nil.
func payloadJSON(ctx context.Context, sub *submission.Submission, links FileLinks, ttl time.Duration) ([]byte, error) {
	if links == nil {
		return recordJSON(sub)
	}
	p := payload{Submission: sub, Files: make([]linkedFile, 0, len(sub.Files))}
	expires := time.Now().Add(ttl).UTC().Truncate(time.Second)
	for _, f := range sub.Files {
		u, err := links.PresignGet(ctx, f.Key, f.Filename, ttl)
		if err != nil {
			return nil, fmt.Errorf("download link for %s: %w", f.Key, err)
		}
		p.Files = append(p.Files, linkedFile{File: f, URL: u, ExpiresAt: expires})
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, step.Permanent("encode the submission record: %v", err)
	}
	return b, nil
}
