package staging

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/formq/formq/actions/web"
	"github.com/labstack/echo/v4"
)

// Errors of tusd's own (a mismatched offset, an unknown upload, a missing
// Tus-Resumable) are plain text "ERR_CODE: message"; tus clients show
// them to people and scripts match on codes, so formq answers them in
// the contract's JSON, by status.
var tusCodes = map[int]*web.Error{
	http.StatusBadRequest:            web.ErrBadRequest,
	http.StatusForbidden:             web.ErrForbidden,
	http.StatusNotFound:              web.ErrNotFound.With(nil, "No such upload: it was finished and attached, cancelled or removed; start it again."),
	http.StatusMethodNotAllowed:      web.ErrMethodNotAllowed,
	http.StatusConflict:              ErrUploadOffset,
	http.StatusPreconditionFailed:    ErrTusVersion,
	http.StatusRequestEntityTooLarge: web.ErrPayloadTooLarge,
	http.StatusUnsupportedMediaType:  web.ErrUnsupportedMedia.With(nil, "Send the bytes of a PATCH as application/offset+octet-stream."),
	http.StatusServiceUnavailable:    web.ErrUnavailable,
}

// ErrUploadOffset answers a PATCH whose Upload-Offset is not the upload's:
// the client asks the offset with HEAD and sends from there.
var ErrUploadOffset = &web.Error{Status: http.StatusConflict, Code: "upload_offset_mismatch", Message: "Upload-Offset is not the upload's offset; ask it with HEAD and send from there."}

// ErrTusVersion answers a tus request without Tus-Resumable: 1.0.0.
var ErrTusVersion = &web.Error{Status: http.StatusPreconditionFailed, Code: "tus_version_unsupported", Message: "Send Tus-Resumable: 1.0.0; formq speaks tus 1.0."}

// serveTus runs a tusd handler with its plain-text errors turned into the
// contract's JSON.
func serveTus(h http.Handler, w http.ResponseWriter, r *http.Request) {
	jw := &jsonErrors{ResponseWriter: w}
	h.ServeHTTP(jw, r)
	jw.flush()
}

// jsonErrors holds back a plain-text error answer of tusd and writes the
// contract's JSON in its place; every other answer passes through.
type jsonErrors struct {
	http.ResponseWriter
	held int // the status of the error held back, or 0
}

func (w *jsonErrors) WriteHeader(code int) {
	if code >= 400 && strings.HasPrefix(w.Header().Get(echo.HeaderContentType), "text/plain") {
		w.held = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrors) Write(b []byte) (int, error) {
	if w.held == 0 {
		return w.ResponseWriter.Write(b)
	}
	w.flush()
	return len(b), nil // tusd's text is replaced, not sent
}

// flush writes the held error, if any, as JSON (no body for HEAD is left
// to net/http, which drops it).
func (w *jsonErrors) flush() {
	code := w.held
	if code == 0 {
		return
	}
	w.held = 0
	e, ok := tusCodes[code]
	switch {
	case ok:
	case code >= 500:
		e = web.ErrInternal
	default:
		e = &web.Error{Status: code, Code: web.ErrBadRequest.Code, Message: http.StatusText(code) + "."}
	}
	body, _ := json.Marshal(web.Body(e))
	body = append(body, '\n')
	h := w.Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
	}
	w.ResponseWriter.WriteHeader(code)
	_, _ = w.ResponseWriter.Write(body)
}

func (w *jsonErrors) Unwrap() http.ResponseWriter { return w.ResponseWriter }
