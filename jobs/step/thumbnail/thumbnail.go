package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
)

// Image limits of the thumbnail step. The Thumbnailer checks a picture's
// pixels from its header before anything is decoded, so a small file
// claiming huge dimensions (a pixel flood) fails at once.
const (
	DefaultMaxPixels = 40_000_000 // 40 megapixels, about 160 MB decoded
	DefaultMaxBytes  = 32 << 20   // bytes of the stored original read
	maxThumbSize     = 4096
)

// Thumbnailer makes the variants of one stored image that fit in
// size x size boxes, stored beside it (ThumbnailKey). It fails with a
// Permanent error for what no retry can fix (not an image, over
// maxPixels). formq's is jobs/images; the API needs none, since it only
// checks thumbnail steps' settings.
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

// thumbnailConfig is the declaration of a thumbnail step.
type thumbnailConfig struct {
	Field     string `json:"field"`
	Sizes     []int  `json:"sizes"`
	MaxPixels int64  `json:"max_pixels"`
}

func (c *thumbnailConfig) check() error {
	if c.Field == "" {
		return errors.New("field: name the upload field holding the image")
	}
	if len(c.Sizes) == 0 {
		return errors.New("sizes: want a list of pixel sizes like [64, 256]")
	}
	for _, s := range c.Sizes {
		if s < 1 || s > maxThumbSize {
			return fmt.Errorf("sizes: %d is not between 1 and %d", s, maxThumbSize)
		}
	}
	if c.MaxPixels < 0 {
		return errors.New("max_pixels must be positive")
	}
	if c.MaxPixels == 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	return nil
}

// ThumbnailKey is where the variant of an original that fits in a
// size x size box is stored: next to the original.
func ThumbnailKey(original string, size int, ext string) string {
	return submission.VariantKey(original, "thumb-"+strconv.Itoa(size)+"."+ext)
}

// thumbnailStep stores, for every image of an upload field, variants that
// fit in size x size boxes, upright per the EXIF orientation. PNG, GIF and
// WebP give PNG variants (transparency kept); JPEG gives JPEG.
func thumbnailStep(t Thumbnailer) StepType {
	return StepType{
		Timeout: 60 * time.Second,
		Check: func(cfg map[string]any) error {
			var c thumbnailConfig
			if err := decodeConfig(cfg, &c); err != nil {
				return err
			}
			return c.check()
		},
		Run: func(ctx context.Context, r StepRun) error {
			var c thumbnailConfig
			if err := decodeConfig(r.Config, &c); err != nil {
				return Permanent("bad configuration: %v", err)
			}
			if err := c.check(); err != nil {
				return Permanent("bad configuration: %v", err)
			}
			if t == nil {
				return Permanent("this worker has no thumbnailer")
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
