package uploads

import (
	"archive/zip"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
)

func encoded(t *testing.T, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// ftyp builds the start of an ISO-BMFF file: an ftyp box with a major
// brand and compatible brands.
func ftyp(major string, compatible ...string) []byte {
	size := 16 + 4*len(compatible)
	b := []byte{0, 0, 0, byte(size)}
	b = append(b, "ftyp"+major+"\x00\x00\x00\x00"...)
	for _, c := range compatible {
		b = append(b, c...)
	}
	return append(b, "\x00\x00\x00\x08mdat"...)
}

func TestSniff(t *testing.T) {
	pngData := encoded(t, func(b *bytes.Buffer, i image.Image) error { return png.Encode(b, i) })
	jpegData := encoded(t, func(b *bytes.Buffer, i image.Image) error { return jpeg.Encode(b, i, nil) })
	gifData := encoded(t, func(b *bytes.Buffer, i image.Image) error { return gif.Encode(b, i, nil) })
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"png", pngData, "image/png"},
		{"jpeg", jpegData, "image/jpeg"},
		{"gif", gifData, "image/gif"},
		{"webp", []byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"), "image/webp"},
		{"heic", ftyp("heic", "mif1", "heic"), "image/heic"},
		{"heif generic", ftyp("mif1", "mif1"), "image/heif"},
		{"heic as compatible brand", ftyp("mif1", "mif1", "heic"), "image/heic"},
		{"avif", ftyp("avif", "mif1", "avif"), "image/avif"},
		{"avif as compatible brand", ftyp("mif1", "mif1", "miaf", "avif"), "image/avif"},
		{"mp4 is not an image", ftyp("isom", "isom", "mp41"), "video/mp4"},
		{"pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "application/pdf"},
		{"pdf after junk", []byte("\x00\x00junk%PDF-1.4\n"), "application/pdf"},
		{"html", []byte("<!DOCTYPE html><html><script>alert(1)</script>"), "text/html"},
		{"html with leading space", []byte("  \n<html><body>"), "text/html"},
		{"plain text", []byte("hello, world"), "text/plain"},
		{"zip", []byte("PK\x03\x04\x14\x00"), "application/zip"},
		{"gzip", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"), "application/gzip"},
		{"json", []byte(`{"name": "Ada", "tags": ["a", "b"]}`), "application/json"},
		{"empty", nil, "application/octet-stream"},
		{"binary junk", []byte{0x00, 0x01, 0x02, 0xff, 0xfe}, "application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sniff(tt.data); got != tt.want {
				t.Errorf("Sniff = %q, want %q", got, tt.want)
			}
		})
	}
}

// officeZip builds a zip archive with the given entries in order, each
// deflated the way office suites write them.
func officeZip(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		w, err := zw.Create(e[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// contentTypes is a [Content_Types].xml as Word writes it: long enough
// that the word/ parts start well past the first 512 bytes.
func contentTypes(kind string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n")
	b.WriteString(`<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">`)
	b.WriteString(`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>`)
	b.WriteString(`<Default Extension="xml" ContentType="application/xml"/>`)
	for i, part := range []string{"document", "styles", "settings", "webSettings", "fontTable", "theme/theme1", "footnotes", "endnotes"} {
		fmt.Fprintf(&b, `<Override PartName="/%s/%s.xml" ContentType="application/vnd.openxmlformats-officedocument.%s.part%d+xml"/>`, kind, part, kind, i)
	}
	b.WriteString(`<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>`)
	b.WriteString(`</Types>`)
	return b.String()
}

const rels = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`

// tiff is a minimal little-endian TIFF: header and an empty IFD.
var tiff = []byte("II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// TestSniffFormatsBeyondTheStandardTable covers formats that
// http.DetectContentType, formq's earlier sniffer, named only as zip,
// octet-stream or text.
func TestSniffFormatsBeyondTheStandardTable(t *testing.T) {
	docx := officeZip(t, [2]string{"[Content_Types].xml", contentTypes("word")}, [2]string{"_rels/.rels", rels},
		[2]string{"word/document.xml", `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>`})
	if i := bytes.Index(docx, []byte("word/document.xml")); i < 512 || i > SniffLen-64 {
		t.Fatalf("fixture: word/document.xml's entry at byte %d, want it past 512 and within SniffLen", i)
	}
	xlsx := officeZip(t, [2]string{"[Content_Types].xml", contentTypes("xl")}, [2]string{"_rels/.rels", rels},
		[2]string{"xl/workbook.xml", `<workbook/>`})
	// OpenDocument stores its type uncompressed as the first entry.
	var odt bytes.Buffer
	zw := zip.NewWriter(&odt)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "mimetype", Method: zip.Store})
	_, _ = w.Write([]byte("application/vnd.oasis.opendocument.text"))
	w, _ = zw.Create("content.xml")
	_, _ = w.Write([]byte("<office:document-content/>"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"docx", docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"xlsx", xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		{"odt", odt.Bytes(), "application/vnd.oasis.opendocument.text"},
		{"tiff", tiff, "image/tiff"},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><script>alert(1)</script></svg>`), "image/svg+xml"},
		{"heic sequence", ftyp("hevc", "mif1", "msf1", "hevc"), "image/heic-sequence"},
		{"mp4 from a phone", ftyp("mp42", "isom", "mp42"), "video/mp4"},
		{"mp3 with an ID3 tag", []byte("ID3\x04\x00\x00\x00\x00\x00\x0fTIT2\x00\x00\x00\x05\x00\x00\x03Hi"), "audio/mpeg"},
		{"csv", []byte("name,email,age\nAda,ada@example.com,36\nGrace,grace@example.com,45\n"), "text/csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sniff(tt.data); got != tt.want {
				t.Errorf("Sniff = %q, want %q", got, tt.want)
			}
		})
	}
	// The docx's word/ part lies past the 512 bytes the earlier sniffer
	// read: cut there it is only a zip.
	if got := Sniff(docx[:512]); got != "application/zip" {
		t.Errorf("Sniff(first 512 bytes of a docx) = %q, want application/zip", got)
	}
}

func TestSniffLooksOnlyAtTheStart(t *testing.T) {
	data := append(bytes.Repeat([]byte("a"), SniffLen), "<html>"...)
	if got := Sniff(data); got != "text/plain" {
		t.Errorf("Sniff = %q, want text/plain: bytes past %d must not count", got, SniffLen)
	}
}

func TestTypeAllowed(t *testing.T) {
	tests := []struct {
		sniffed string
		allowed []string
		want    bool
	}{
		{"image/png", nil, true},
		{"image/png", []string{"image/png"}, true},
		{"image/png", []string{"image/jpeg", "image/webp"}, false},
		{"text/html", []string{"image/png"}, false},
		{"image/heic", []string{"image/*"}, true},
		{"text/html", []string{"image/*"}, false},
		{"application/pdf", []string{"*/*"}, true},
		{"image/png", []string{" IMAGE/PNG "}, true},
		{"imagex/png", []string{"image/*"}, false},
		{"application/pdf", []string{"application/x-pdf"}, true},
		{"application/gzip", []string{"application/x-gzip"}, true},
		{"audio/wav", []string{"audio/wave"}, true},
		{"application/zip", []string{"application/x-pdf"}, false},
		{"image/svg+xml", []string{"image/*"}, false},
		{"image/svg+xml", []string{"image/svg+xml"}, true},
		{"image/svg+xml", []string{"*/*"}, true},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", []string{"application/zip"}, false},
	}
	for _, tt := range tests {
		if got := TypeAllowed(tt.sniffed, tt.allowed); got != tt.want {
			t.Errorf("TypeAllowed(%q, %q) = %v, want %v", tt.sniffed, tt.allowed, got, tt.want)
		}
	}
}

// FuzzSniff holds Sniff to what the upload path relies on for any bytes:
// no panic and a bare lower-case media type, which TypeAllowed compares.
func FuzzSniff(f *testing.F) {
	f.Add([]byte{})
	f.Add(ftyp("mif1", "mif1", "miaf", "avif"))
	f.Add([]byte("\x00\x00\x00\xffftypheic"))
	f.Add([]byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"))
	f.Add([]byte("<svg xmlns=\"http://www.w3.org/2000/svg\">"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Sniff(data)
		if got == "" || strings.ContainsAny(got, "; ") || got != strings.ToLower(got) || !strings.Contains(got, "/") {
			t.Fatalf("Sniff = %q, want a bare lower-case media type", got)
		}
	})
}
