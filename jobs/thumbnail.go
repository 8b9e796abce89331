package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // registers the GIF decoder
	"image/jpeg"
	"image/png"
	"io"
	"strconv"
	"time"

	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // registers the WebP decoder
)

// Image limits of the thumbnail step. A picture's pixels are checked from
// its header (image.DecodeConfig) before anything is decoded, so a small
// file claiming huge dimensions (a pixel flood) fails at once.
const (
	DefaultMaxPixels = 40_000_000 // 40 megapixels, about 160 MB decoded
	DefaultMaxBytes  = 32 << 20   // bytes of the stored original read
	maxThumbSize     = 4096
)

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
func thumbnailStep(store ObjectStore) StepType {
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
			for _, f := range r.Submission.Files {
				if f.Field != c.Field {
					continue
				}
				if err := thumbnails(ctx, store, f.Key, c); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func thumbnails(ctx context.Context, store ObjectStore, key string, c thumbnailConfig) error {
	body, size, err := store.Open(ctx, key)
	if errors.Is(err, uploads.ErrNotFound) {
		return Permanent("the image %s is not in storage", key)
	}
	if err != nil {
		return err
	}
	defer body.Close()
	if size > DefaultMaxBytes {
		return Permanent("the image is %d bytes, over the limit of %d", size, DefaultMaxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(body, DefaultMaxBytes+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	img, format, err := decodeImage(data, c.MaxPixels)
	if err != nil {
		return err
	}
	orientation := exifOrientation(data)
	ext, ctype := "png", "image/png"
	if format == "jpeg" {
		ext, ctype = "jpg", "image/jpeg"
	}
	for _, s := range c.Sizes {
		// The box is square, so resizing before turning upright is the same
		// and much cheaper.
		out, err := encodeImage(orient(resize(img, s), orientation), format)
		if err != nil {
			return Permanent("encode the %dpx variant: %v", s, err)
		}
		if err := store.PutBytes(ctx, ThumbnailKey(key, s, ext), out, ctype); err != nil {
			return err
		}
	}
	return nil
}

// decodeImage decodes an image after checking, from its header alone,
// that it is an image of a known format within the pixel cap.
func decodeImage(data []byte, maxPixels int64) (image.Image, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", Permanent("not an image formq can read (PNG, JPEG, GIF, WebP): %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, "", Permanent("the image has no pixels (%dx%d)", cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxPixels {
		return nil, "", Permanent("the image is %dx%d (%d megapixels), over the limit of %d megapixels",
			cfg.Width, cfg.Height, px/1_000_000, maxPixels/1_000_000)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", Permanent("the %s image is damaged: %v", format, err)
	}
	return img, format, nil
}

// resize scales an image to fit in a size x size box, keeping its aspect
// ratio; it never enlarges.
func resize(src image.Image, size int) image.Image {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= size && h <= size {
		return src
	}
	if w >= h {
		h, w = max(1, h*size/w), size
	} else {
		w, h = max(1, w*size/h), size
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	return dst
}

func encodeImage(img image.Image, format string) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch format {
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85})
	default:
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		err = enc.Encode(&buf, img)
	}
	return buf.Bytes(), err
}
