package pages

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"net/http"

	"github.com/labstack/echo/v4"
)

// FaviconPath is where browsers look for a site's icon unasked.
const FaviconPath = "/favicon.ico"

// faviconSize is the icon's width and height in pixels.
const faviconSize = 32

// Favicon builds the handler of GET /favicon.ico: formq's icon (a form's
// lines on the hosted pages' accent colour), so the hosted pages, the
// inbox and every browser visit get an icon instead of a 404 in the log.
// It is cached for a day and revalidated by ETag.
func Favicon() echo.HandlerFunc {
	icon := faviconICO()
	sum := sha256.Sum256(icon)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "public, max-age=86400")
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if c.Request().Header.Get("If-None-Match") == etag {
			return c.NoContent(http.StatusNotModified)
		}
		return c.Blob(http.StatusOK, "image/x-icon", icon)
	}
}

// faviconICO draws the icon and wraps its PNG in an ICO file of one
// image, which every browser reads.
func faviconICO() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, faviconSize, faviconSize))
	accent := color.NRGBA{0x0b, 0x57, 0xd0, 0xff} // --formq-accent
	white := color.NRGBA{0xff, 0xff, 0xff, 0xff}
	const r = 6 // corner radius
	for y := range faviconSize {
		for x := range faviconSize {
			// Rounded corners: outside the quarter circles stays clear.
			dx, dy := max(r-x, x-(faviconSize-1-r), 0), max(r-y, y-(faviconSize-1-r), 0)
			if dx*dx+dy*dy > r*r {
				continue
			}
			img.SetNRGBA(x, y, accent)
		}
	}
	// Three lines of a form, the last one short like a button.
	for i, width := range []int{18, 18, 10} {
		top := 8 + i*6
		for y := top; y < top+3; y++ {
			for x := 7; x < 7+width; x++ {
				img.SetNRGBA(x, y, white)
			}
		}
	}
	var pic bytes.Buffer
	_ = png.Encode(&pic, img) // writing to memory cannot fail
	var ico bytes.Buffer
	const headerSize = 6 + 16
	for _, v := range []any{
		[3]uint16{0, 1, 1},                               // reserved, type icon, one image
		[4]uint8{faviconSize, faviconSize, 0, 0},         // width, height, no palette, reserved
		[2]uint16{1, 32},                                 // colour planes, bits per pixel
		[2]uint32{uint32(pic.Len()), uint32(headerSize)}, // image size and offset
	} {
		_ = binary.Write(&ico, binary.LittleEndian, v)
	}
	ico.Write(pic.Bytes())
	return ico.Bytes()
}
