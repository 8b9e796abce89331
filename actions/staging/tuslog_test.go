package staging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	xslog "golang.org/x/exp/slog"
)

// TestTusErrorLogsHoldNoCapability: tusd's error lines name the upload
// by its URL and id; the part after the object id (the multipart id)
// completes the capability that lets anyone write the upload, so it
// never reaches formq's log.
func TestTusErrorLogsHoldNoCapability(t *testing.T) {
	var out bytes.Buffer
	h := quiet{slog.NewJSONHandler(&out, nil)}
	const secret = "aed6b386-ece3-4f1f-ac8b-ec5c1b11dbe9"
	r := xslog.NewRecord(time.Now(), xslog.LevelError, "InternalServerError", 0)
	r.AddAttrs(xslog.String("path", "01M98EBAR2QEQXADGNEQ22XD5J+"+secret), xslog.String("id", "01M98EBAR2QEQXADGNEQ22XD5J+"+secret),
		xslog.String("method", "PATCH"))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	h2 := h.WithAttrs([]xslog.Attr{xslog.String("id", "01X+"+secret)})
	if err := h2.Handle(context.Background(), xslog.NewRecord(time.Now(), xslog.LevelError, "x", 0)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), secret) || !strings.Contains(out.String(), "01M98EBAR2QEQXADGNEQ22XD5J") {
		t.Errorf("log: %s", out.String())
	}
}
