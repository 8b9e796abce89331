package pages

import (
	"crypto/sha256"
	_ "embed" // the icon file
	"encoding/base64"
	"net/http"

	"github.com/labstack/echo/v4"
)

// FaviconPath is where browsers look for a site's icon unasked.
const FaviconPath = "/favicon.ico"

// faviconICO is formq's icon: a form's lines on the hosted pages' accent
// colour, one 32x32 PNG in an ICO file, which every browser reads. It is
// drawn by faviconDrawing in favicon_test.go, which checks the file is
// that drawing (FORMQ_WRITE_FAVICON=1 writes it again); the API links
// no image code.
//
//go:embed favicon.ico
var faviconICO []byte

// Favicon builds the handler of GET /favicon.ico: formq's icon (a form's
// lines on the hosted pages' accent colour), so the hosted pages, the
// inbox and every browser visit get an icon instead of a 404 in the log.
// It is cached for a day and revalidated by ETag.
func Favicon() echo.HandlerFunc {
	icon := faviconICO
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
