package uploads

import (
	"mime"
	"strings"

	"github.com/gabriel-vasile/mimetype"
)

// SniffLen is how many leading bytes Sniff looks at: mimetype's default
// read limit, the amount its detectors are written for (zip-based formats
// such as docx name their parts a few hundred bytes in).
const SniffLen = 4096

// Sniff names the content type of data from its first bytes, never from
// what the client claimed, using mimetype's detectors (some 200 formats).
// The result is mimetype's canonical name without parameters: "text/plain",
// not "text/plain; charset=utf-8". An empty file is
// application/octet-stream, which no image or document type admits.
//
// Sniff cuts data to SniffLen itself and never calls mimetype.SetLimit, so
// it leaves the library's global settings to other callers.
func Sniff(data []byte) string {
	if len(data) > SniffLen {
		data = data[:SniffLen]
	}
	if len(data) == 0 {
		return "application/octet-stream"
	}
	t := mediaType(mimetype.Detect(data).String())
	switch t {
	case "video/mp4", "image/heif", "image/heif-sequence":
		if img := isobmffImage(data); img != "" {
			return img
		}
	}
	return t
}

// mediaType drops parameters and lower-cases a MIME type.
func mediaType(s string) string {
	t, _, err := mime.ParseMediaType(s)
	if err != nil {
		return "application/octet-stream"
	}
	return t
}

// isobmffImage looks at the compatible brands of an ftyp box, which
// mimetype does not: many encoders write the generic "mif1" (or a video
// brand) as major brand and "avif" or "heic" only among the compatible
// ones. It returns "" when no image brand is listed.
func isobmffImage(data []byte) string {
	if len(data) < 16 || string(data[4:8]) != "ftyp" {
		return ""
	}
	boxLen := int(data[0])<<24 | int(data[1])<<16 | int(data[2])<<8 | int(data[3])
	if boxLen < 16 || boxLen > len(data) {
		boxLen = min(len(data), 64)
	}
	brands := []string{string(data[8:12])}
	for i := 16; i+4 <= boxLen; i += 4 {
		brands = append(brands, string(data[i:i+4]))
	}
	generic := ""
	for _, b := range brands {
		switch b {
		case "avif", "avis":
			return "image/avif"
		case "heic", "heix":
			return "image/heic"
		case "mif1":
			generic = "image/heif"
		}
	}
	return generic
}

// TypeAllowed reports whether a sniffed type matches one of the allowed
// patterns ("image/png", "image/*", "*/*"). An empty list allows any type.
// A listed alias counts as its canonical type: "application/x-pdf" allows
// application/pdf, "application/x-gzip" allows application/gzip. SVG can
// carry scripts, so "image/*" does not admit it: only "image/svg+xml"
// itself or "*/*" do.
func TypeAllowed(sniffed string, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == "*/*" || a == sniffed:
			return true
		case strings.HasSuffix(a, "/*") && strings.HasPrefix(sniffed, strings.TrimSuffix(a, "*")) && sniffed != svg:
			return true
		case canonical(a) == sniffed:
			return true
		}
	}
	return false
}

// svg is the one image type a wildcard does not admit.
const svg = "image/svg+xml"

// canonical is mimetype's main name for a type or one of its aliases; a
// type mimetype does not know is returned as it is.
func canonical(t string) string {
	if m := mimetype.Lookup(t); m != nil {
		return mediaType(m.String())
	}
	return t
}
