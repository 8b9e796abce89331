// Package thumbnail is the built-in thumbnail step: for every image of an
// upload field it stores variants that fit in the step's sizes, made by a
// Thumbnailer (jobs/step/thumbnail/images's, which decodes the pictures).
// Only the worker links it; the API checks thumbnail steps with
// jobs/step/builtin.
package thumbnail

import (
	"context"
	"io"
	"time"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/uploads"
)

// Thumbnailer makes the variants of one stored image that fit in
// size x size boxes, stored beside it (builtin.ThumbnailKey). It fails
// with a Permanent error for what no retry can fix (not an image, over
// maxPixels). formq's is jobs/step/thumbnail/images; the API needs none,
// since it only checks thumbnail steps' settings.
type Thumbnailer interface {
	Thumbnails(ctx context.Context, key string, sizes []int, maxPixels int64) error
}

// ObjectStore reads and writes S3 objects for steps; *uploads.Store is the
// implementation.
type ObjectStore interface {
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	PutBytes(ctx context.Context, key string, body []byte, contentType string) error
}

var _ ObjectStore = (*uploads.Store)(nil)

// Step is the thumbnail step type: it stores, for every image of an
// upload field, variants that fit in size x size boxes, upright per the
// EXIF orientation. PNG, GIF and WebP give PNG variants (transparency
// kept); JPEG gives JPEG. t makes the variants; a nil t fails every
// thumbnail step for good.
func Step(t Thumbnailer) step.Type {
	return step.Type{
		Timeout: 60 * time.Second,
		Check:   builtin.CheckThumbnail,
		Run: func(ctx context.Context, r step.Run) error {
			var c builtin.ThumbnailSettings
			if err := step.Decode(r.Config, &c); err != nil {
				return step.Permanent("bad configuration: %v", err)
			}
			if err := c.Check(); err != nil {
				return step.Permanent("bad configuration: %v", err)
			}
			if t == nil {
				return step.Permanent("this worker has no thumbnailer")
			}
			for _, f := range r.Submission.Files {
				if f.Field != c.Field {
					continue
				}
				if err := t.Thumbnails(ctx, f.Key, c.Sizes, c.MaxPixels); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
