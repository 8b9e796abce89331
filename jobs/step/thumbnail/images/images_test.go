package images

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/jobs/step/thumbnail"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
)

func testStore(t *testing.T) *uploads.Store {
	t.Helper()
	s := testenv.StartS3(t)
	ctx := context.Background()
	store, err := uploads.NewStore(ctx, uploads.Config{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	return store
}

// halves is a w x h picture, red on the left half and blue on the right.
func halves(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{B: 255, A: 255}
			if x < w/2 {
				c = color.NRGBA{R: 255, A: 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

// withOrientation splices an EXIF APP1 segment with an orientation tag
// right after a JPEG's SOI marker, as cameras write it.
func withOrientation(jpg []byte, o uint16) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2a")
	binary.Write(&tiff, binary.BigEndian, uint32(8))
	binary.Write(&tiff, binary.BigEndian, uint16(1))           // one entry
	binary.Write(&tiff, binary.BigEndian, []uint16{0x0112, 3}) // orientation, SHORT
	binary.Write(&tiff, binary.BigEndian, uint32(1))           // count
	binary.Write(&tiff, binary.BigEndian, []uint16{o, 0})      // value
	binary.Write(&tiff, binary.BigEndian, uint32(0))           // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(jpg[:2])
	out.Write([]byte{0xFF, 0xE1})
	binary.Write(&out, binary.BigEndian, uint16(len(seg)+2))
	out.Write(seg)
	out.Write(jpg[2:])
	return out.Bytes()
}

func runThumbnail(t *testing.T, store *uploads.Store, key string, sizes ...any) error {
	t.Helper()
	sub := &submission.Submission{ID: "01THUMB", Action: "a"}
	sub.Files = []submission.File{{Field: "avatar", Object: uploads.Object{Key: key}}, {Field: "other", Object: uploads.Object{Key: "nope"}}}
	cfg := map[string]any{"field": "avatar", "sizes": sizes}
	st := thumbnail.Step(New(store))
	if err := st.Check(cfg); err != nil {
		t.Fatal(err)
	}
	return st.Run(context.Background(), step.Run{Submission: sub, Config: cfg})
}

func decodeStored(t *testing.T, store *uploads.Store, key string) (image.Image, string) {
	t.Helper()
	b, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("variant %s: %v", key, err)
	}
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode %s: %v", key, err)
	}
	return img, format
}

func TestThumbnailVariantsNextToOriginal(t *testing.T) {
	store := testStore(t)
	ctx := context.Background()
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, halves(300, 200))
	key := "uploads/a/01THUMB/avatar/0"
	if err := store.PutBytes(ctx, key, pngBuf.Bytes(), "image/png"); err != nil {
		t.Fatal(err)
	}
	// Sizes arrive as floats after the task's JSON round trip.
	if err := runThumbnail(t, store, key, 64.0, 256.0, 1000.0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		size, w, h int
	}{{64, 64, 42}, {256, 256, 170}, {1000, 300, 200}} {
		img, format := decodeStored(t, store, builtin.ThumbnailKey(key, c.size, "png"))
		if b := img.Bounds(); format != "png" || b.Dx() != c.w || b.Dy() != c.h {
			t.Errorf("size %d: %s %dx%d, want png %dx%d", c.size, format, b.Dx(), b.Dy(), c.w, c.h)
		}
	}
	keys, _ := store.List(ctx, "uploads/a/01THUMB/avatar/")
	if len(keys) != 4 {
		t.Errorf("keys %v; want the original and 3 variants next to it", keys)
	}
}

func TestThumbnailHonoursEXIFOrientation(t *testing.T) {
	store := testStore(t)
	var jpgBuf bytes.Buffer
	jpeg.Encode(&jpgBuf, halves(400, 200), &jpeg.Options{Quality: 95})
	key := "uploads/a/01THUMB/avatar/0"
	// Orientation 6: the camera was turned; viewers rotate 90 degrees
	// clockwise, so the left (red) half ends up on top.
	if err := store.PutBytes(context.Background(), key, withOrientation(jpgBuf.Bytes(), 6), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	if err := runThumbnail(t, store, key, 100); err != nil {
		t.Fatal(err)
	}
	img, format := decodeStored(t, store, builtin.ThumbnailKey(key, 100, "jpg"))
	if b := img.Bounds(); format != "jpeg" || b.Dx() != 50 || b.Dy() != 100 {
		t.Fatalf("%s %dx%d; want an upright jpeg 50x100", format, b.Dx(), b.Dy())
	}
	top, bottom := img.At(25, 10), img.At(25, 90)
	if r, _, b, _ := top.RGBA(); r < 0xc000 || b > 0x4000 {
		t.Errorf("top is %v; want red", top)
	}
	if r, _, b, _ := bottom.RGBA(); b < 0xc000 || r > 0x4000 {
		t.Errorf("bottom is %v; want blue", bottom)
	}
}

func TestThumbnailPixelFloodFailsWithoutMemorySpike(t *testing.T) {
	store := testStore(t)
	key := "uploads/a/01THUMB/avatar/0"
	// testdata/pixel-flood.png: a valid 65-byte PNG claiming 65535x65535
	// RGBA pixels; decoding it naively would allocate 16 GiB.
	flood, err := os.ReadFile("../../../testdata/pixel-flood.png")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutBytes(context.Background(), key, flood, "image/png"); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err = runThumbnail(t, store, key, 64)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "65535x65535") {
		t.Fatalf("err = %v; want a permanent failure naming the dimensions", err)
	}
	// Decoding would need 16 GiB; the header check allocates next to nothing.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("allocated %d MiB for a %d-byte pixel flood", alloc>>20, len(flood))
	}
	t.Logf("pixel flood of %d bytes refused; allocated %d KiB", len(flood), (after.TotalAlloc-before.TotalAlloc)>>10)
}

func TestThumbnailBadInputsFailForGood(t *testing.T) {
	store := testStore(t)
	key := "uploads/a/01THUMB/avatar/0"
	if err := store.PutBytes(context.Background(), key, []byte("not an image at all"), "image/png"); err != nil {
		t.Fatal(err)
	}
	err := runThumbnail(t, store, key, 64)
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "not an image") {
		t.Errorf("garbage: %v", err)
	}
	err = runThumbnail(t, store, "uploads/a/01THUMB/avatar/9", 64)
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "not in storage") {
		t.Errorf("missing original: %v", err)
	}
}

// TestDecodesExactlyTheThumbnailTypes keeps submission.ThumbnailTypes,
// which the API checks actions files against, equal to what this package
// decodes: a file of each listed type sniffs as it and decodes, and the
// image types an upload field could otherwise accept do not.
func TestDecodesExactlyTheThumbnailTypes(t *testing.T) {
	img := halves(4, 2)
	var pngb, jpgb, gifb bytes.Buffer
	_ = png.Encode(&pngb, img)
	_ = jpeg.Encode(&jpgb, img, nil)
	_ = gif.Encode(&gifb, img, nil)
	// A 1x1 lossless WebP (x/image has no encoder).
	webp, _ := base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
	samples := map[string][]byte{"image/png": pngb.Bytes(), "image/jpeg": jpgb.Bytes(), "image/gif": gifb.Bytes(), "image/webp": webp}
	if len(samples) != len(submission.ThumbnailTypes) {
		t.Errorf("samples of %d types, the list has %v", len(samples), submission.ThumbnailTypes)
	}
	for _, typ := range submission.ThumbnailTypes {
		b, ok := samples[typ]
		if !ok {
			t.Errorf("%s is listed as decodable but has no sample here", typ)
			continue
		}
		if got := uploads.Sniff(b); got != typ {
			t.Errorf("the %s sample sniffs as %s", typ, got)
		}
		if _, format, err := image.DecodeConfig(bytes.NewReader(b)); err != nil {
			t.Errorf("%s does not decode: %v", typ, err)
		} else if "image/"+format != typ {
			t.Errorf("%s decodes as %s", typ, format)
		}
	}
	// Headers of types that sniff as images the step does not decode.
	for typ, b := range map[string][]byte{
		"image/heic":    append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), make([]byte, 64)...),
		"image/avif":    append([]byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"), make([]byte, 64)...),
		"image/bmp":     append([]byte("BM"), make([]byte, 64)...),
		"image/svg+xml": []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>`),
	} {
		if slices.Contains(submission.ThumbnailTypes, typ) {
			t.Errorf("%s is listed as decodable", typ)
		}
		if _, _, err := image.DecodeConfig(bytes.NewReader(b)); err == nil {
			t.Errorf("%s decodes: add it to submission.ThumbnailTypes", typ)
		}
	}
}
