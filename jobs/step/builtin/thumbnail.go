package builtin

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
)

// Image limits of the thumbnail step. The thumbnailer checks a picture's
// pixels from its header before anything is decoded, so a small file
// claiming huge dimensions (a pixel flood) fails at once.
const (
	DefaultMaxPixels = 40_000_000 // 40 megapixels, about 160 MB decoded
	DefaultMaxBytes  = 32 << 20   // bytes of the stored original read
	maxThumbSize     = 4096
)

// ThumbnailSettings are the declaration of a thumbnail step.
type ThumbnailSettings struct {
	Field     string `json:"field"`
	Sizes     []int  `json:"sizes"`
	MaxPixels int64  `json:"max_pixels"`
}

// Check reports what is wrong with the settings and fills MaxPixels's
// default.
func (c *ThumbnailSettings) Check() error {
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

// CheckThumbnail checks a thumbnail step's settings.
func CheckThumbnail(cfg map[string]any) error {
	var c ThumbnailSettings
	if err := step.Decode(cfg, &c); err != nil {
		return err
	}
	return c.Check()
}

// ThumbnailKey is where the variant of an original that fits in a
// size x size box is stored: next to the original.
func ThumbnailKey(original string, size int, ext string) string {
	return submission.VariantKey(original, "thumb-"+strconv.Itoa(size)+"."+ext)
}
