// Package client holds formq's browser modules: client.js (formq.js), one
// dependency-free ES module that enhances forms posting to formq (inline
// errors, pending state, upload progress, checks before sending, live
// status) with formq-tus.js, its resumable uploads loaded only when a form
// has them, and formq-react.js, a React 19 hook shaped like useActionState
// for apps that bundle React. The API serves them at /formq.js,
// /formq-tus.js and /formq-react.js; they are embedded here so the binary
// carries them, each with its gzip form made once at start.
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
}

func newAsset(body []byte) *Asset {
	sum := sha256.Sum256(body)
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = w.Write(body)
	_ = w.Close()
	return &Asset{Body: body, Gzipped: b.Bytes(), Version: hex.EncodeToString(sum[:6])}
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
