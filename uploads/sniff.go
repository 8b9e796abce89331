package uploads

import (
	"bytes"
	"mime"
	"net/http"
	"strings"
)

// SniffLen is how many leading bytes Sniff looks at.
const SniffLen = 512

// Sniff names the content type of data from its first bytes, never from
// what the client claimed. It adds to http.DetectContentType the formats it
// lacks (HEIC/HEIF, AVIF, PDF not at offset 0). The result has no
// parameters: "text/plain", not "text/plain; charset=utf-8". An empty file
// is application/octet-stream, which no image or document type admits.
func Sniff(data []byte) string {
	if len(data) > SniffLen {
		data = data[:SniffLen]
	}
	if len(data) == 0 {
		return "application/octet-stream"
	}
	if t := sniffISOBMFF(data); t != "" {
		return t
	}
	// Some PDF writers put a few junk bytes before the header; readers
	// accept it within the first 1 KiB.
	if i := bytes.Index(data, []byte("%PDF-")); i >= 0 && i < 16 {
		return "application/pdf"
	}
	t, _, err := mime.ParseMediaType(http.DetectContentType(data))
	if err != nil {
		return "application/octet-stream"
	}
	return t
}

// sniffISOBMFF recognises HEIC, HEIF and AVIF images by their ftyp box:
// the major brand, then the compatible brands, since many encoders write
// the generic "mif1" as major brand and "avif" or "heic" only among the
// compatible ones.
func sniffISOBMFF(data []byte) string {
	if len(data) < 12 || string(data[4:8]) != "ftyp" {
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
		case "heic", "heix", "hevc", "hevx", "heim", "heis":
			return "image/heic"
		case "mif1", "msf1":
			generic = "image/heif"
		}
	}
	return generic
}

// TypeAllowed reports whether a sniffed type matches one of the allowed
// patterns ("image/png", "image/*", "*/*"). An empty list allows any type.
func TypeAllowed(sniffed string, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == "*/*" || a == sniffed:
			return true
		case strings.HasSuffix(a, "/*") && strings.HasPrefix(sniffed, strings.TrimSuffix(a, "*")):
			return true
		}
	}
	return false
}
