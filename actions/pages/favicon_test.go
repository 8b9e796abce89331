package pages

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"os"
	"testing"
)

// faviconSize is the icon's width and height in pixels.
const faviconSize = 32

// TestFaviconFileIsTheDrawing: favicon.ico is what faviconDrawing draws;
// FORMQ_WRITE_FAVICON=1 writes the file from the drawing.
func TestFaviconFileIsTheDrawing(t *testing.T) {
	want := faviconDrawing()
	if os.Getenv("FORMQ_WRITE_FAVICON") == "1" {
		if err := os.WriteFile("favicon.ico", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(faviconICO, want) {
		t.Fatalf("favicon.ico (%d bytes) is not the drawing (%d bytes): run FORMQ_WRITE_FAVICON=1 go test -run TestFaviconFileIsTheDrawing ./actions/pages/", len(faviconICO), len(want))
	}
	if _, err := png.Decode(bytes.NewReader(faviconICO[6+16:])); err != nil {
		t.Fatalf("the icon's image is no PNG: %v", err)
	}
}

// faviconDrawing draws the icon and wraps its PNG in an ICO file of one
// image, which every browser reads.
func faviconDrawing() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, faviconSize, faviconSize))
	accent := color.NRGBA{0x0b, 0x57, 0xd0, 0xff} // --formq-accent
	white := color.NRGBA{0xff, 0xff, 0xff, 0xff}
	const r = 6 // corner radius
	for y := range faviconSize {
		for x := range faviconSize {
			// Rounded corners: outside the quarter circles stays clear.
			dx, dy := max(r-x, x-(faviconSize-1-r), 0), max(r-y, y-(faviconSize-1-r), 0)
			if dx*dx+dy*dy > r*r {
				continue
			}
			img.SetNRGBA(x, y, accent)
		}
	}
	// Three lines of a form, the last one short like a button.
	for i, width := range []int{18, 18, 10} {
		top := 8 + i*6
		for y := top; y < top+3; y++ {
			for x := 7; x < 7+width; x++ {
				img.SetNRGBA(x, y, white)
			}
		}
	}
	var pic bytes.Buffer
	_ = png.Encode(&pic, img) // writing to memory cannot fail
	var ico bytes.Buffer
	const headerSize = 6 + 16
	for _, v := range []any{
		[3]uint16{0, 1, 1},                               // reserved, type icon, one image
		[4]uint8{faviconSize, faviconSize, 0, 0},         // width, height, no palette, reserved
		[2]uint16{1, 32},                                 // colour planes, bits per pixel
		[2]uint32{uint32(pic.Len()), uint32(headerSize)}, // image size and offset
	} {
		_ = binary.Write(&ico, binary.LittleEndian, v)
	}
	ico.Write(pic.Bytes())
	return ico.Bytes()
}
