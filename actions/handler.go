package actions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
	"github.com/oklog/ulid/v2"
)

// Reserved form fields.
const (
	FieldIdempotency = "_idempotency"
	FieldBound       = "_bound"
)

// maxURLEncodedFields bounds the fields of an urlencoded body.
const maxURLEncodedFields = 1000

// Handler serves the action endpoints.
type Handler struct {
	Actions *Registry
	Files   FileStore
	Queue   Enqueuer
	Pages   *Pages
	Log     *slog.Logger
	// Sealer seals and opens bound arguments and upload references.
	Sealer *seal.Sealer
	// NewID makes submission ids; ULIDs when nil.
	NewID func() string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// ReaderLimits bound multipart bodies beyond max_body.
	ReaderLimits uploads.ReaderLimits
}

// form is what a request body held, before validation.
type form struct {
	values    map[string][]string
	files     []File
	fileCount map[string]int
	errs      FieldErrors
}

// Submit handles POST /actions/{name}: read and check the body while
// files stream to S3, enqueue the follow-up work, answer at once.
func (h *Handler) Submit(c echo.Context) error {
	a, ok := h.Actions.Get(c.Param("name"))
	if !ok {
		return ErrActionNotFound
	}
	req := c.Request()
	ctx := req.Context()
	mediaType, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || (mediaType != echo.MIMEMultipartForm && mediaType != echo.MIMEApplicationForm) {
		return ErrUnsupportedMedia
	}
	if req.ContentLength > a.MaxBody {
		return ErrPayloadTooLarge.With(nil, fmt.Sprintf("The request is over the limit of %s.", FormatSize(a.MaxBody)))
	}
	req.Body = http.MaxBytesReader(c.Response(), req.Body, a.MaxBody)

	sub := &Submission{
		ID: h.newID(), Action: a.Name, Queue: a.Queue, Steps: a.Steps,
		ClientIP: c.RealIP(), UserAgent: req.UserAgent(), RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
		ReceivedAt: h.now().UTC(),
	}
	f := &form{values: map[string][]string{}, fileCount: map[string]int{}, errs: FieldErrors{}}
	if mediaType == echo.MIMEMultipartForm {
		err = h.readMultipart(ctx, a, sub, req, f)
	} else {
		err = readURLEncoded(req.Body, a, f)
	}
	if err != nil {
		h.discard(ctx, f.files)
		return err
	}

	values, errs := a.Validate(f.values)
	for k, v := range f.errs {
		errs[k] = append(errs[k], v...)
	}
	for _, u := range a.Uploads {
		if u.Required && f.fileCount[u.Name] == 0 && len(errs[u.Name]) == 0 {
			errs.Add(u.Name, u.RequiredMessage())
		}
	}
	if len(errs) > 0 {
		h.discard(ctx, f.files)
		return ErrValidation.withForm(a, errs, echoValues(a, f.values))
	}
	for _, fl := range a.Fields {
		if fl.Sensitive() {
			delete(values, fl.Name)
		}
	}
	sub.Values = values
	sub.Files = f.files
	if sub.Files == nil {
		sub.Files = []File{}
	}
	sub.Revalidate = expandRevalidate(a.Revalidate, sub)

	if err := h.Queue.Enqueue(ctx, sub); err != nil {
		h.discard(ctx, f.files)
		return ErrUnavailable.With(err)
	}
	h.Log.InfoContext(ctx, "submission accepted", "action", a.Name, "submission", sub.ID, "files", len(sub.Files))
	return h.accepted(c, a, sub)
}

// withForm is a validation failure that carries what the form needs.
func (e *Error) withForm(a *Action, fields FieldErrors, values map[string]any) *Error {
	c := *e
	c.Action, c.Fields, c.Values = a, fields, values
	return &c
}

// Accepted is the JSON answer to an accepted submission.
type Accepted struct {
	OK         bool           `json:"ok"`
	Message    string         `json:"message,omitempty"`
	Redirect   string         `json:"redirect,omitempty"`
	Submission SubmissionInfo `json:"submission"`
}

// SubmissionInfo describes an accepted submission to its sender.
type SubmissionInfo struct {
	ID        string `json:"id"`
	Action    string `json:"action"`
	Status    string `json:"status"`
	StatusURL string `json:"statusUrl"`
	Files     []File `json:"files"`
}

func (h *Handler) accepted(c echo.Context, a *Action, sub *Submission) error {
	redirect := "/forms/" + a.Name + "/done?submission=" + url.QueryEscape(sub.ID)
	if a.Redirect != "" {
		redirect = expand(a.Redirect, sub, url.QueryEscape)
	}
	if !WantsJSON(c.Request()) {
		return c.Redirect(http.StatusSeeOther, redirect)
	}
	return c.JSON(http.StatusAccepted, Accepted{
		OK: true, Message: a.Message, Redirect: redirect,
		Submission: SubmissionInfo{
			ID: sub.ID, Action: a.Name, Status: "queued",
			StatusURL: "/submissions/" + sub.ID, Files: sub.Files,
		},
	})
}

// readMultipart reads parts in order: values into f.values, files straight
// into the store. Problems with a file (size, type, count) become field
// errors and the rest of that file is skipped; a broken body ends the read.
func (h *Handler) readMultipart(ctx context.Context, a *Action, sub *Submission, req *http.Request, f *form) error {
	mr, err := uploads.NewMultipartReader(req.Body, req.Header.Get(echo.HeaderContentType), h.ReaderLimits)
	if err != nil {
		return ErrBadRequest.With(err, "The multipart body has no boundary.")
	}
	for {
		p, err := mr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !p.IsFile {
			if !wanted(a, p.Field) {
				if _, err := io.Copy(io.Discard, p); err != nil {
					return err
				}
				continue
			}
			v, err := mr.ReadValue(p)
			if err != nil {
				return err
			}
			f.values[p.Field] = append(f.values[p.Field], v)
			continue
		}
		if err := h.readFile(ctx, a, sub, p, f); err != nil {
			return err
		}
	}
}

func (h *Handler) readFile(ctx context.Context, a *Action, sub *Submission, p *uploads.Part, f *form) error {
	skip := func() error {
		_, err := io.Copy(io.Discard, p)
		return err
	}
	u := a.Upload(p.Field)
	if u == nil || p.Filename == "" {
		// Undeclared, or a browser's empty file input (no file chosen).
		return skip()
	}
	n := f.fileCount[u.Name]
	if n >= u.MaxFiles {
		if n == u.MaxFiles {
			f.errs.Add(u.Name, u.TooManyMessage())
		}
		f.fileCount[u.Name]++
		return skip()
	}
	key := UploadKey(a.Name, sub.ID, u.Name, n)
	obj, err := h.Files.Put(ctx, key, p, uploads.PutOptions{MaxSize: u.MaxSize, Types: u.Types, Filename: p.Filename})
	var typeErr *uploads.TypeError
	switch {
	case err == nil:
	case errors.Is(err, uploads.ErrTooLarge):
		f.errs.Add(u.Name, u.TooLargeMessage())
		return skip()
	case errors.As(err, &typeErr):
		f.errs.Add(u.Name, u.TypeMessage(typeErr.Sniffed))
		return skip()
	default:
		return err
	}
	f.fileCount[u.Name]++
	f.files = append(f.files, File{Field: u.Name, Object: obj})
	return nil
}

// wanted reports whether a plain value is kept: declared fields and the
// reserved ones. Unknown fields are read past and dropped.
func wanted(a *Action, name string) bool {
	switch name {
	case FieldIdempotency, FieldBound:
		return true
	case a.Honeypot:
		return a.Honeypot != ""
	}
	return a.Field(name) != nil
}

func readURLEncoded(body io.Reader, a *Action, f *form) error {
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if strings.Count(string(data), "&") >= maxURLEncodedFields {
		return ErrBadRequest.With(uploads.ErrTooManyParts, fmt.Sprintf("The request has more than %d fields.", maxURLEncodedFields))
	}
	vals, err := url.ParseQuery(string(data))
	if err != nil {
		return ErrBadRequest.With(err, "The form body is not valid URL encoding.")
	}
	for k, v := range vals {
		if wanted(a, k) {
			f.values[k] = v
		}
	}
	return nil
}

// discard deletes the files of a submission that is not accepted. It runs
// even when the request's context has ended (the client went away).
func (h *Handler) discard(ctx context.Context, files []File) {
	if len(files) == 0 {
		return
	}
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = f.Key
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := h.Files.Delete(dctx, keys...); err != nil {
		h.Log.ErrorContext(ctx, "could not delete the files of a refused submission; the janitor will", "keys", keys, "err", err)
	}
}

// echoValues is what a validation failure sends back: the raw values of
// declared, non-sensitive fields.
func echoValues(a *Action, raw map[string][]string) map[string]any {
	out := map[string]any{}
	for _, fl := range a.Fields {
		v, ok := raw[fl.Name]
		if !ok || fl.Sensitive() {
			continue
		}
		if fl.Multiple {
			out[fl.Name] = v
		} else if len(v) > 0 {
			out[fl.Name] = v[0]
		}
	}
	return out
}

// expand fills {id} and {field} placeholders from a submission.
func expand(tmpl string, sub *Submission, escape func(string) string) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	pairs := []string{"{id}", escape(sub.ID), "{action}", escape(sub.Action)}
	for k, v := range sub.Values {
		if s, ok := v.(string); ok {
			pairs = append(pairs, "{"+k+"}", escape(s))
		} else if _, isList := v.([]string); !isList {
			pairs = append(pairs, "{"+k+"}", escape(fmt.Sprint(v)))
		}
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

func expandRevalidate(r Revalidate, sub *Submission) Revalidate {
	out := Revalidate{Paths: []string{}, Tags: []string{}}
	same := func(s string) string { return s }
	for _, p := range r.Paths {
		out.Paths = append(out.Paths, expand(p, sub, url.PathEscape))
	}
	for _, t := range r.Tags {
		out.Tags = append(out.Tags, expand(t, sub, same))
	}
	return out
}

func (h *Handler) newID() string {
	if h.NewID != nil {
		return h.NewID()
	}
	return ulid.Make().String()
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// newIdempotencyKey makes the fresh key a hosted form embeds.
func newIdempotencyKey() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
