package routes_test

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/formq/formq/actions/routes"
	"github.com/labstack/echo/v4"
)

// TestFavicon: GET /favicon.ico answers an icon browsers read (an ICO
// holding one 32x32 PNG of the accent colour with a form's white lines),
// cached, and 304 for the ETag it gave, instead of a 404.
func TestFavicon(t *testing.T) {
	e := echo.New()
	if err := routes.Register(e, routes.Parts{}); err != nil {
		t.Fatal(err)
	}
	get := func(header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/favicon.ico", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	rec := get(nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/x-icon" {
		t.Fatalf("GET /favicon.ico: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=86400") {
		t.Errorf("Cache-Control %q; want a day", cc)
	}
	ico := rec.Body.Bytes()
	var head struct {
		Reserved, Type, Count uint16
		Width, Height         uint8
		_                     [2]uint8
		Planes, Bits          uint16
		Size, Offset          uint32
	}
	if err := binary.Read(bytes.NewReader(ico), binary.LittleEndian, &head); err != nil {
		t.Fatal(err)
	}
	if head.Reserved != 0 || head.Type != 1 || head.Count != 1 || head.Width != 32 || head.Height != 32 ||
		int(head.Offset)+int(head.Size) != len(ico) {
		t.Fatalf("not an ICO of one 32x32 image: %+v, %d bytes", head, len(ico))
	}
	img, err := png.Decode(bytes.NewReader(ico[head.Offset:]))
	if err != nil {
		t.Fatalf("the icon's image: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 32 || b.Dy() != 32 {
		t.Errorf("image %v; want 32x32", b)
	}
	rgba := func(x, y int) [4]uint32 {
		r, g, b, a := img.At(x, y).RGBA()
		return [4]uint32{r >> 8, g >> 8, b >> 8, a >> 8}
	}
	if got := rgba(16, 30); got != [4]uint32{0x0b, 0x57, 0xd0, 0xff} {
		t.Errorf("background %v; want the accent colour", got)
	}
	if got := rgba(10, 9); got != [4]uint32{0xff, 0xff, 0xff, 0xff} {
		t.Errorf("a form line %v; want white", got)
	}
	if got := rgba(0, 0); got[3] != 0 {
		t.Errorf("corner %v; want clear (rounded)", got)
	}
	if again := get(map[string]string{"If-None-Match": rec.Header().Get("ETag")}); again.Code != http.StatusNotModified {
		t.Errorf("with its ETag: %d; want 304", again.Code)
	}
}
