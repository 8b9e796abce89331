package pages

import (
	"net/http"
	"strings"

	"github.com/formq/formq/client"
	"github.com/labstack/echo/v4"
)

// ScriptPath is where client.js is served.
const ScriptPath = "/formq.js"

// ScriptURL is client.js's versioned, long-cached URL under a base.
func ScriptURL(base string) string { return base + ScriptPath + "?v=" + client.Version }

// TusPath is where formq-tus.js, client.js's resumable uploads, is served.
const TusPath = "/formq-tus.js"

// ReactPath is where formq-react.js, the React hook, is served.
const ReactPath = "/formq-react.js"

// Script handles GET /formq.js: client.js, gzipped when the browser takes
// it. At its versioned URL (?v= of the current script) it is cached for a
// year; at any other it is cached briefly, so a page linking the bare
// /formq.js gets a new release within minutes. Any page may load it, as a
// module script, from any origin.
func Script(c echo.Context) error { return serveAsset(c, client.FormqJS) }

// TusScript handles GET /formq-tus.js, which client.js imports from beside
// itself for forms with resumable uploads; served as Script serves
// client.js.
func TusScript(c echo.Context) error { return serveAsset(c, client.TusJS) }

// ReactScript handles GET /formq-react.js, served as Script serves
// client.js: apps copy it into their bundle, or an import map points
// "formq-react" at it.
func ReactScript(c echo.Context) error { return serveAsset(c, client.ReactJS) }

// StylePath is where formq.css, the optional stylesheet for the markup
// client.js adds, is served.
const StylePath = "/formq.css"

// OfflinePath is where formq-offline.js, client.js's outbox of submissions
// kept while offline, is served.
const OfflinePath = "/formq-offline.js"

// WorkerPath is where formq-sw.js, the service worker code that sends the
// outbox by Background Sync, is served.
const WorkerPath = "/formq-sw.js"

// LanguagePath is where client.js's words in one language are served.
func LanguagePath(lang string) string { return "/formq-i18n-" + lang + ".js" }

// Asset handles GET of one more of client.js's files (a language, the
// outbox, the service worker code, the stylesheet), served as Script
// serves client.js.
func Asset(a *client.Asset) echo.HandlerFunc {
	return func(c echo.Context) error { return serveAsset(c, a) }
}

func serveAsset(c echo.Context, a *client.Asset) error {
	h := c.Response().Header()
	if c.QueryParam("v") == a.Version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	etag := `"` + a.Version + `"`
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
	if h.Get(echo.HeaderAccessControlAllowOrigin) == "" {
		h.Set(echo.HeaderAccessControlAllowOrigin, "*")
	}
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	body := a.Body
	if strings.Contains(c.Request().Header.Get(echo.HeaderAcceptEncoding), "gzip") {
		h.Set(echo.HeaderContentEncoding, "gzip")
		body = a.Gzipped
	}
	return c.Blob(http.StatusOK, a.ContentType, body)
}
