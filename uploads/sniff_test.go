package uploads

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
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
	}
	for _, tt := range tests {
		if got := TypeAllowed(tt.sniffed, tt.allowed); got != tt.want {
			t.Errorf("TypeAllowed(%q, %q) = %v, want %v", tt.sniffed, tt.allowed, got, tt.want)
		}
	}
}
