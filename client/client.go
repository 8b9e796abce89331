// Package client holds formq's browser modules: client.js (formq.js), one
// dependency-free ES module that enhances forms posting to formq (inline
// errors, pending state, upload progress, checks before sending, live
// status) with formq-tus.js, its resumable uploads loaded only when a form
// has them, and formq-react.js, a React 19 hook shaped like useActionState
// for apps that bundle React. formq-i18n-{lang}.js holds its words in other
// languages than English, formq-offline.js its outbox of submissions kept
// while offline, formq-sw.js the service worker code that sends them by
// Background Sync, and formq.css an optional stylesheet for the markup it
// adds. The API serves each at its file name; they are embedded here so the
// binary carries them, each with its gzip form made once at start.
package client

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
)

// Asset is one embedded module as the API serves it.
type Asset struct {
	// Body is the module as written in the repository.
	Body []byte
	// Gzipped is Body compressed at the best level, for browsers that
	// accept gzip.
	Gzipped []byte
	// Version is the first 12 hex digits of Body's SHA-256: the v= of its
	// long-cached URL changes whenever the module does.
	Version string
	// ContentType is its media type: JavaScript, or CSS for the stylesheet.
	ContentType string
}

// NewAsset prepares a file the API serves like client.js (the ALTCHA
// widget's, for one): gzipped once, versioned by its content.
func NewAsset(body []byte, contentType string) *Asset { return newAssetOf(body, contentType) }

const javaScript = "text/javascript; charset=utf-8"

func newAsset(body []byte) *Asset { return newAssetOf(body, javaScript) }

func newAssetOf(body []byte, contentType string) *Asset {
	sum := sha256.Sum256(body)
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = w.Write(body)
	_ = w.Close()
	return &Asset{Body: body, Gzipped: b.Bytes(), Version: hex.EncodeToString(sum[:6]), ContentType: contentType}
}

// Script is formq.js as written in the repository.
//
//go:embed formq.js
var Script []byte

// Types is formq.d.ts, the TypeScript declarations of Script's exports.
//
//go:embed formq.d.ts
var Types []byte

// FormqJS is formq.js as served at /formq.js.
var FormqJS = newAsset(Script)

// Version is FormqJS's version.
var Version = FormqJS.Version

// Gzipped is FormqJS's gzip form.
var Gzipped = FormqJS.Gzipped

//go:embed formq-tus.js
var tusScript []byte

// TusJS is formq-tus.js as served at /formq-tus.js: the resumable uploads
// (tus) of formq.js, which loads it beside itself only for actions with
// resumable upload fields.
var TusJS = newAsset(tusScript)

//go:embed formq-react.js
var reactScript []byte

// ReactTypes is formq-react.d.ts, the TypeScript declarations of ReactJS's
// exports.
//
//go:embed formq-react.d.ts
var ReactTypes []byte

// ReactJS is formq-react.js as served at /formq-react.js: useFormq, the
// React hook. It imports "react", so apps bundle it with their own React.
var ReactJS = newAsset(reactScript)

//go:embed formq-i18n-de.js
var germanScript []byte

// Languages are formq.js's words in languages other than English, by
// primary language subtag: formq-i18n-{lang}.js, which formq.js loads from
// beside itself for a form inside an element with that lang.
var Languages = map[string]*Asset{"de": newAsset(germanScript)}

//go:embed formq-offline.js
var offlineScript []byte

// OfflineJS is formq-offline.js as served at /formq-offline.js: the outbox
// (IndexedDB) where formq.js keeps a submission that could not reach formq,
// to send it with the same idempotency key when the connection returns.
var OfflineJS = newAsset(offlineScript)

//go:embed formq-sw.js
var workerScript []byte

// WorkerJS is formq-sw.js as served at /formq-sw.js: the service worker
// code, imported by a worker on the page's own origin, that sends the
// outbox's submissions by Background Sync.
var WorkerJS = newAsset(workerScript)

//go:embed formq.css
var styleSheet []byte

// StyleCSS is formq.css as served at /formq.css: the optional stylesheet
// for the markup formq.js adds to forms, light and dark.
var StyleCSS = newAssetOf(styleSheet, "text/css; charset=utf-8")
