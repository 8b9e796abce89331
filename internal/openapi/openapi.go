// Package openapi holds the OpenAPI 3.1 document of formq's HTTP API and
// serves it at /openapi.json, so clients can be generated and answers
// checked. Its tests hold it to the real answers of a running stack and to
// the routes the API registers.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// Document is the OpenAPI 3.1 document (openapi.json): every route, the
// answers each gives and the JSON of each answer.
//
//go:embed openapi.json
var Document []byte

// Path is where the API serves the document.
const Path = "/openapi.json"

// Handler serves the document as application/json with a strong ETag:
// caches keep it for five minutes, then revalidate (304 when unchanged).
func Handler() http.Handler {
	sum := sha256.Sum256(Document)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		// ServeContent answers HEAD, If-None-Match (304) and ranges.
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(Document))
	})
}
