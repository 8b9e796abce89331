package pages

import (
	"embed"
	"path"

	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/client"
	"github.com/labstack/echo/v4"
)

// AltchaPath is where the ALTCHA widget's files are served:
// formq-altcha.js (the loader a page includes), altcha.js, altcha.css and
// sha.js (the widget's SHA-256 worker) from npm altcha, and its licence.
const AltchaPath = "/altcha/"

// altchaFiles are the widget's files: copied unchanged from the npm
// package altcha at the version internal/conformance pins (a test holds
// them to it), and formq's loader.
//
//go:embed altcha
var altchaFiles embed.FS

// altchaAssets are altchaFiles by name, ready to serve.
var altchaAssets = func() map[string]*client.Asset {
	out := map[string]*client.Asset{}
	entries, _ := altchaFiles.ReadDir("altcha")
	for _, e := range entries {
		b, _ := altchaFiles.ReadFile("altcha/" + e.Name())
		ct := "text/plain; charset=utf-8"
		switch path.Ext(e.Name()) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		}
		out[e.Name()] = client.NewAsset(b, ct)
	}
	return out
}()

// AltchaAsset handles GET /altcha/{file}: one of the widget's files,
// served as client.js is (any origin may load it, as a module).
func AltchaAsset(c echo.Context) error {
	name := c.Param("file")
	a, ok := altchaAssets[name]
	if !ok {
		return web.ErrNotFound
	}
	return serveAsset(c, a)
}
