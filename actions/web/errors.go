// Package web holds what every HTTP feature of formq shares: the
// contract's errors and their central handler, the request scope
// (logs, traces, metrics), the origin gate of posts, links to formq's own
// pages and the status capability of a submission.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
)

// Error is a failure with its place in the contract's table: the HTTP
// status, the stable code scripts match on, and a message for people.
// Handlers return it; ErrorHandler renders it as JSON or HTML.
type Error struct {
	Status  int
	Code    string
	Message string
	// Invalid is what a validation_failed error carries back to its form.
	Invalid
	RetryAfter time.Duration     // 429 and 503
	Header     map[string]string // extra response headers
	Err        error             // the cause, logged, never shown
	// Quiet marks an expected refusal whose cause is reported elsewhere
	// (a dependency's outage is logged once when it starts): it is
	// logged at DEBUG, not as a failed request.
	Quiet bool
}

// Invalid is the part of a validation failure its form needs to be shown
// again: the errors, the values to echo, the files kept.
type Invalid struct {
	Fields   actions.FieldErrors   // validation_failed only
	Values   map[string]any        // validation_failed only: what to echo back
	Action   *actions.Action       // the action, to re-render its form
	Kept     map[string][]KeptFile // validation_failed only: files kept as staged uploads
	Redirect string                // validation_failed only: the form's _redirect, carried on
	Back     string                // validation_failed only: the page the sender came from
	// Submission is the submission the app refused (a rejected one): the
	// answer names it beside the errors.
	Submission *Refused
}

// Refused names a submission the app refused, in a validation failure's
// answer.
type Refused struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	StatusURL string `json:"statusUrl"`
}

// KeptFile is a file of a failed submission kept as a staged upload: send
// Ref as the upload field's value to attach it without sending it again.
type KeptFile = submission.KeptFile

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errors of the contract, by code. Handlers wrap them with details.
var (
	ErrBadRequest        = &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "The request could not be read."}
	ErrInvalidBoundArgs  = &Error{Status: http.StatusBadRequest, Code: "invalid_bound_args", Message: "The form's bound arguments are missing, expired or were changed."}
	ErrUnauthenticated   = &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: "Sign in to continue."}
	ErrForbiddenOrigin   = &Error{Status: http.StatusForbidden, Code: "forbidden_origin", Message: "Cross-site submissions to this action are not allowed."}
	ErrForbidden         = &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "You are not allowed to do this."}
	ErrActionNotFound    = &Error{Status: http.StatusNotFound, Code: "action_not_found", Message: "No such action."}
	ErrSubmissionMissing = &Error{Status: http.StatusNotFound, Code: "submission_not_found", Message: "No such submission."}
	ErrNotFound          = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "Not found."}
	ErrMethodNotAllowed  = &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "Method not allowed."}
	ErrIdemConflict      = &Error{Status: http.StatusConflict, Code: "idempotency_conflict", Message: "This idempotency key was already used for a different submission; send new content with a new key."}
	ErrPayloadTooLarge   = &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "The request is too large."}
	ErrUnsupportedMedia  = &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "Send multipart/form-data or application/x-www-form-urlencoded."}
	ErrValidation        = &Error{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Message: "Please fix the errors below."}
	ErrRateLimited       = &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "Too many submissions; try again later."}
	ErrUnavailable       = &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "The service is briefly unavailable; nothing was saved. Try again shortly.", RetryAfter: 5 * time.Second}
	ErrTooSlow           = &Error{Status: http.StatusRequestTimeout, Code: "too_slow", Message: "The upload was too slow and was stopped; nothing was saved. Try again on a faster connection."}
	ErrInternal          = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "Something went wrong on our side; nothing was saved."}
)

// With returns a copy of the error with a cause and, when given, a more
// precise message.
func (e *Error) With(cause error, message ...string) *Error {
	c := *e
	c.Err = cause
	if len(message) > 0 {
		c.Message = message[0]
	}
	return &c
}

// WithForm returns a copy of a validation failure that carries what the
// form needs to be shown again.
func (e *Error) WithForm(a *actions.Action, fields actions.FieldErrors, values map[string]any) *Error {
	c := *e
	c.Action, c.Fields, c.Values = a, fields, values
	return &c
}

// Closing marks an answer sent before the body was read to its end: the
// connection closes after it.
func Closing(e *Error) *Error {
	e.Header = map[string]string{echo.HeaderConnection: "close"}
	return e
}

// Is makes errors.Is(err, ErrX) match any copy made with With.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// AsError maps any error to its contract error: *Error as it is, the
// sentinels of other packages to their codes, anything else to internal.
func AsError(err error) *Error {
	var e *Error
	var he *echo.HTTPError
	var tooBig *http.MaxBytesError
	var typeErr *uploads.TypeError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &tooBig):
		return ErrPayloadTooLarge.With(err, fmt.Sprintf("The request is over the limit of %s.", actions.FormatSize(tooBig.Limit)))
	case errors.Is(err, uploads.ErrDraining):
		// The body is unread: close rather than read the rest of it.
		return Closing(ErrUnavailable.With(err, "The server is restarting; nothing was saved. Try again shortly."))
	case errors.Is(err, uploads.ErrBusy):
		e := ErrUnavailable.With(err, "Too many uploads are in progress; nothing was saved. Try again shortly.")
		e.RetryAfter = 2 * time.Second
		return e
	case errors.Is(err, uploads.ErrTooSlow):
		// Close rather than read the rest of a slow body to keep the
		// connection: the client is told at once and holds nothing.
		e := ErrTooSlow.With(err)
		e.Header = map[string]string{"Connection": "close"}
		return e
	case errors.Is(err, uploads.ErrUnavailable):
		return ErrUnavailable.With(err)
	case errors.Is(err, uploads.ErrMalformed), errors.Is(err, uploads.ErrTooManyParts),
		errors.Is(err, uploads.ErrValueTooLong), errors.As(err, &typeErr):
		return ErrBadRequest.With(err, "The request could not be read: "+publicReason(err))
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A body that ends mid-part, wherever it was being read.
		return ErrBadRequest.With(err, "The request could not be read: the body is truncated.")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrBadRequest.With(err, "The request was cancelled or timed out.")
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return ErrNotFound.With(err)
		case http.StatusMethodNotAllowed:
			return ErrMethodNotAllowed.With(err)
		case http.StatusRequestEntityTooLarge:
			return ErrPayloadTooLarge.With(err)
		case http.StatusUnsupportedMediaType:
			return ErrUnsupportedMedia.With(err)
		case http.StatusUnauthorized:
			return ErrUnauthenticated.With(err)
		case http.StatusForbidden:
			return ErrForbidden.With(err)
		case http.StatusTooManyRequests:
			return ErrRateLimited.With(err)
		}
		if he.Code >= 400 && he.Code < 500 {
			return &Error{Status: he.Code, Code: "bad_request", Message: http.StatusText(he.Code), Err: err}
		}
	}
	return ErrInternal.With(err)
}

// logPath is a request's path as the log shows it: a resumable upload's
// URL is the capability to write it, so the part after its object id
// ("{ulid}+{multipart id}") is left out.
func logPath(p string) string {
	if i := strings.IndexByte(p, '+'); i >= 0 && strings.Contains(p, "/uploads/tus/") {
		return p[:i] + "+…"
	}
	return p
}

// publicReason is the short, safe description of a body error.
func publicReason(err error) string {
	switch {
	case errors.Is(err, uploads.ErrTooManyParts):
		return "too many fields."
	case errors.Is(err, uploads.ErrValueTooLong):
		return "a field value is too long."
	default:
		return "the multipart body is malformed or truncated."
	}
}

// ErrorPage renders the HTML answer to a failure, for browsers;
// *pages.Pages is the implementation.
type ErrorPage interface {
	Error(c echo.Context, e *Error) error
}

// ErrorHandler is echo's central error handler: every failure leaves
// through it as the contract's JSON, or as HTML for browsers (from pages).
// Unexpected errors are logged; users never see Go error strings.
func ErrorHandler(log *slog.Logger, pages ErrorPage) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := AsError(err)
		if e.Code == ErrValidation.Code && e.Action != nil && e.Message == ErrValidation.Message {
			localised := *e
			localised.Message = e.Action.Say(actions.MessageInvalid, e.Message)
			e = &localised
		}
		req := c.Request()
		switch {
		case e.Quiet:
			log.DebugContext(req.Context(), "request refused", "status", e.Status, "code", e.Code, "path", logPath(req.URL.Path), "err", err)
		case e.Status >= 500:
			log.ErrorContext(req.Context(), "request failed", "status", e.Status, "code", e.Code, "path", logPath(req.URL.Path), "err", err)
		case e.Err != nil:
			log.DebugContext(req.Context(), "request refused", "status", e.Status, "code", e.Code, "path", logPath(req.URL.Path), "err", err)
		}
		h := c.Response().Header()
		if e.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
		}
		for k, v := range e.Header {
			h.Set(k, v)
		}
		if o := req.Header.Get(echo.HeaderOrigin); o != "" && e.Code == ErrForbiddenOrigin.Code && h.Get(echo.HeaderAccessControlAllowOrigin) == "" &&
			!strings.HasPrefix(req.URL.Path, "/admin") {
			// A page on a refused origin may read why, so its developer
			// sees more than "Failed to fetch". The answer holds nothing
			// but the refusal.
			h.Set(echo.HeaderAccessControlAllowOrigin, o)
			h.Set(echo.HeaderAccessControlAllowCredentials, "true")
			h.Add(echo.HeaderVary, echo.HeaderOrigin)
		}
		if e.Status == http.StatusRequestEntityTooLarge || e.Code == "bad_request" {
			// The body may be unread; don't let the client keep sending it.
			h.Set("Connection", "close")
		}
		var werr error
		if req.Method == http.MethodHead {
			werr = c.NoContent(e.Status)
		} else if WantsJSON(req) || pages == nil || c.Get(jsonOnlyKey) != nil {
			werr = c.JSON(e.Status, Body(e))
		} else {
			werr = pages.Error(c, e)
		}
		if werr != nil {
			log.WarnContext(req.Context(), "writing error response", "err", werr)
		}
	}
}

// ErrorBody is the JSON of a failure.
type ErrorBody struct {
	OK     bool                `json:"ok"`
	Error  ErrorInfo           `json:"error"`
	Errors actions.FieldErrors `json:"errors,omitempty"`
	Values map[string]any      `json:"values,omitempty"`
	// Kept lists, by upload field, the files of a failed submission kept
	// as staged uploads; send a ref as the field's value to attach it.
	Kept map[string][]KeptFile `json:"kept,omitempty"`
	// Submission names the submission when the app refused it.
	Submission *Refused `json:"submission,omitempty"`
}

// ErrorInfo is the code and message of a failure.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Body is the JSON of a failure.
func Body(e *Error) ErrorBody {
	b := ErrorBody{Error: ErrorInfo{Code: e.Code, Message: e.Message}, Errors: e.Fields}
	if e.Code == ErrValidation.Code {
		b.Values, b.Kept, b.Submission = e.Values, e.Kept, e.Submission
		if b.Values == nil {
			b.Values = map[string]any{}
		}
	}
	return b
}

// jsonOnlyKey marks, in an echo context, a route whose clients are
// programs: see JSONOnly.
const jsonOnlyKey = "formq.jsonOnly"

// JSONOnly is the middleware of routes only programs call (tus clients
// send Accept: */* or nothing): their failures answer the contract's JSON
// whatever Accept says, never an HTML page.
func JSONOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(jsonOnlyKey, true)
		return next(c)
	}
}

// WantsJSON reports whether the client prefers JSON to HTML, from Accept.
func WantsJSON(r *http.Request) bool {
	best, bestQ := "", -1.0
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				q = f
			}
		}
		switch mt {
		case "application/json", "text/html", "application/xhtml+xml":
			if q > bestQ {
				best, bestQ = mt, q
			}
		}
	}
	return best == "application/json"
}

// JSONErrors makes the failures of a JSON or event-stream endpoint JSON
// too, unless the client asks for HTML (a browser opening the URL).
func JSONErrors(c echo.Context) {
	req := c.Request()
	if !strings.Contains(req.Header.Get("Accept"), "html") {
		req.Header.Set("Accept", echo.MIMEApplicationJSON)
	}
}
