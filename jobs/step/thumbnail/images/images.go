// Package images makes the variants of the thumbnail step: it decodes
// PNG, JPEG, GIF and WebP (pixel count checked from the header first),
// turns JPEGs upright per their EXIF orientation and scales with
// Catmull-Rom. Only the worker links it.
package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // registers the GIF decoder
	"image/jpeg"
	"image/png"
	"io"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/jobs/step/thumbnail"
	"github.com/formq/formq/uploads"
	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // registers the WebP decoder
	"golang.org/x/sync/semaphore"
)

// Default decode limits: one decoded image, and every image being
// decoded at once in a worker process.
const (
	DefaultMaxDecodeBytes = 64 << 20
	DefaultDecodeBudget   = 256 << 20
)

// Thumbnailer reads originals from and writes variants to an object store.
// It bounds the memory of decoding: each image by width x height x bytes
// per pixel, read from its header, and all images decoded at once by one
// process-wide budget, so concurrency cannot multiply it.
type Thumbnailer struct {
	store     thumbnail.ObjectStore
	maxDecode int64
	budget    *semaphore.Weighted
	budgetMax int64
}

// New builds a thumbnailer on an object store (*uploads.Store) with the
// default decode limits.
func New(store thumbnail.ObjectStore) *Thumbnailer {
	return NewWithLimits(store, DefaultMaxDecodeBytes, DefaultDecodeBudget)
}

// NewWithLimits builds a thumbnailer whose decoded images are at most
// maxDecode bytes each and budget bytes together (FORMQ_THUMBNAIL_MAX_DECODE,
// FORMQ_THUMBNAIL_DECODE_BUDGET).
func NewWithLimits(store thumbnail.ObjectStore, maxDecode, budget int64) *Thumbnailer {
	budget = max(budget, maxDecode)
	return &Thumbnailer{store: store, maxDecode: maxDecode, budget: semaphore.NewWeighted(budget), budgetMax: budget}
}

var _ thumbnail.Thumbnailer = (*Thumbnailer)(nil)

// Thumbnails implements thumbnail.Thumbnailer.
func (t *Thumbnailer) Thumbnails(ctx context.Context, key string, sizes []int, maxPixels int64) error {
	body, size, err := t.store.Open(ctx, key)
	if errors.Is(err, uploads.ErrNotFound) {
		return step.Permanent("the image %s is not in storage", key)
	}
	if err != nil {
		return err
	}
	defer body.Close()
	if size > builtin.DefaultMaxBytes {
		return step.Permanent("the image is %d bytes, over the limit of %d", size, builtin.DefaultMaxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(body, builtin.DefaultMaxBytes+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return step.Permanent("not an image formq can read (PNG, JPEG, GIF, WebP): %v", err)
	}
	need := decodedBytes(cfg)
	if need > t.maxDecode {
		return step.Permanent("the image is %dx%d at %d bytes per pixel, %d MiB decoded, over the limit of %d MiB",
			cfg.Width, cfg.Height, bytesPerPixel(cfg.ColorModel), need>>20, t.maxDecode>>20)
	}
	// Wait for room in the process's decode budget.
	if err := t.budget.Acquire(ctx, need); err != nil {
		return err
	}
	defer t.budget.Release(need)
	img, format, err := decodeImage(data, maxPixels)
	if err != nil {
		return err
	}
	orientation := exifOrientation(data)
	ext, ctype := "png", "image/png"
	if format == "jpeg" {
		ext, ctype = "jpg", "image/jpeg"
	}
	for _, s := range sizes {
		// The box is square, so resizing before turning upright is the same
		// and much cheaper.
		out, err := encodeImage(orient(resize(img, s), orientation), format)
		if err != nil {
			return step.Permanent("encode the %dpx variant: %v", s, err)
		}
		if err := t.store.PutBytes(ctx, builtin.ThumbnailKey(key, s, ext), out, ctype); err != nil {
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
		return nil, "", step.Permanent("not an image formq can read (PNG, JPEG, GIF, WebP): %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, "", step.Permanent("the image has no pixels (%dx%d)", cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxPixels {
		return nil, "", step.Permanent("the image is %dx%d (%d megapixels), over the limit of %d megapixels",
			cfg.Width, cfg.Height, px/1_000_000, maxPixels/1_000_000)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", step.Permanent("the %s image is damaged: %v", format, err)
	}
	return img, format, nil
}

// bytesPerPixel is what the decoder holds per pixel for a color model.
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	case color.Gray16Model:
		return 2
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3 // at most, for 4:4:4
	case color.CMYKModel, color.RGBAModel, color.NRGBAModel, color.NYCbCrAModel:
		return 4
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8 // unknown: assume the widest
}

// decodedBytes is the memory the decoded image will take.
func decodedBytes(cfg image.Config) int64 {
	return int64(cfg.Width) * int64(cfg.Height) * bytesPerPixel(cfg.ColorModel)
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
