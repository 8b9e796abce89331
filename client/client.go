// Package client holds client.js, formq's browser script: one
// dependency-free ES module that enhances forms posting to formq (inline
// errors, pending state, upload progress, checks before sending, live
// status). The API serves it at /formq.js; it is embedded here so the
// binary carries it, with its gzip form made once at start.
package client

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
)

// Script is formq.js as written in the repository.
//
//go:embed formq.js
var Script []byte

// Types is formq.d.ts, the TypeScript declarations of Script's exports.
//
//go:embed formq.d.ts
var Types []byte

// Version is the first 12 hex digits of Script's SHA-256: the v= of its
// long-cached URL changes whenever the script does.
var Version = func() string {
	sum := sha256.Sum256(Script)
	return hex.EncodeToString(sum[:6])
}()

// Gzipped is Script compressed at the best level, as it is served to
// browsers that accept gzip.
var Gzipped = func() []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = w.Write(Script)
	_ = w.Close()
	return b.Bytes()
}()
