package web_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
)

// TestErrorLogsHoldNoTusCapability: a resumable upload refused by the
// upload admission (503) is logged, and its path is the capability to
// write the upload: the line names the upload by its object id only.
func TestErrorLogsHoldNoTusCapability(t *testing.T) {
	var out bytes.Buffer
	e := echo.New()
	e.HTTPErrorHandler = web.ErrorHandler(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	e.PATCH("/uploads/tus/:id", func(echo.Context) error { return uploads.ErrBusy })
	const secret = "441469ca-5b47-47a9-9936-c41b602733d6"
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodPatch, "/uploads/tus/01M98N2T8CYABDMY3BJRD5WBX5+"+secret, nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(out.String(), "01M98N2T8CYABDMY3BJRD5WBX5") || strings.Contains(out.String(), secret) {
		t.Errorf("answer %d, log: %s", rec.Code, out.String())
	}
}
