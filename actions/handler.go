package actions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/formq/formq/internal/seal"
	"github.com/formq/formq/internal/telemetry"
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
	// Auth verifies users of actions with an auth option; nil if none.
	Auth *Authenticator
	// Idempotency keeps answers by idempotency key; nil turns keys off.
	Idempotency Idempotency
	// Limiter enforces rate_limit options; nil turns them off.
	Limiter RateLimiter
	// AllowedOrigins may post cross-site to every action
	// (FORMQ_ALLOWED_ORIGINS); StrictOrigins refuses posts without any
	// origin information (FORMQ_STRICT_ORIGINS).
	AllowedOrigins []string
	StrictOrigins  bool

	guardsMu sync.Mutex
	guards   map[string]*originGuard
	// NewID makes submission ids; ULIDs when nil.
	NewID func() string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// ReaderLimits bound multipart bodies beyond max_body.
	ReaderLimits uploads.ReaderLimits
	// ReadIdle is how long a request body may send nothing
	// (FORMQ_UPLOAD_IDLE_TIMEOUT); uploads.DefaultReadIdle when 0.
	ReadIdle time.Duration
	// Profiles are the actions file's upload_profiles, for POST /uploads.
	Profiles UploadProfiles
	// Objects stages uploads and checks upload references; nil turns
	// presigned uploads and references off.
	Objects ObjectStore
	// Fleet shows the worker side: submission status, revalidation
	// events and the queue dashboard.
	Fleet
	// Metrics counts uploads and rejections; nil records nothing.
	Metrics *Metrics
}

// form is what a request body held, before validation.
type form struct {
	values    map[string][]string
	files     []File
	fileCount map[string]int
	errs      FieldErrors
	stopped   bool     // a refused file went on too long; the rest was not read
	staged    []string // staged uploads whose references were used
}

// Submit handles POST /actions/{name}: check who may post, read and check
// the body while files stream to S3, enqueue the follow-up work, answer
// at once. Cheap refusals (origin, rate limit, media type, declared size,
// auth) come before a byte of the body is read.
func (h *Handler) Submit(c echo.Context) error {
	a, ok := h.Actions.Get(c.Param("name"))
	if !ok {
		return ErrActionNotFound
	}
	req := c.Request()
	ctx := req.Context()
	if err := h.admit(c, a); err != nil {
		return err
	}
	mediaType, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || (mediaType != echo.MIMEMultipartForm && mediaType != echo.MIMEApplicationForm) {
		return ErrUnsupportedMedia
	}
	if req.ContentLength > a.MaxBody {
		return ErrPayloadTooLarge.With(nil, fmt.Sprintf("The request is over the limit of %s.", FormatSize(a.MaxBody)))
	}
	subject, err := h.authenticate(a, req)
	if err != nil {
		return err
	}
	req.Body = http.MaxBytesReader(c.Response(), req.Body, a.MaxBody)
	req.Body = uploads.NewBodyReader(c.Response(), req.Body, h.ReadIdle)

	s := &submission{
		h: h, a: a, subject: subject,
		sub: &Submission{
			ID: h.newID(), Action: a.Name, Queue: a.Queue, Steps: a.Steps, Subject: subject,
			ClientIP: c.RealIP(), UserAgent: req.UserAgent(), RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
			ReceivedAt: h.now().UTC(),
		},
		form: &form{values: map[string][]string{}, fileCount: map[string]int{}, errs: FieldErrors{}},
	}
	telemetry.AddLogAttrs(ctx, slog.String(telemetry.KeySubmission, s.sub.ID), slog.String(telemetry.KeyAction, a.Name))
	err = s.read(c, mediaType)
	if err == nil && s.replay == nil {
		err = s.finish(ctx)
	}
	if err != nil || s.replay != nil || s.spam {
		s.abandon(ctx)
	}
	switch {
	case err != nil:
		return err
	case s.replay != nil:
		c.Response().Header().Set("Idempotent-Replayed", "true")
		return h.answer(c, *s.replay)
	case s.spam:
		h.Metrics.ObserveRejection(a.Name, RejectHoneypot)
		h.Log.WarnContext(ctx, "spam: honeypot filled, nothing kept", "action", a.Name, "client", s.sub.ClientIP)
		body, redirect := h.acceptedAnswer(a, s.sub)
		return h.answer(c, Answer{Status: http.StatusAccepted, Body: body, Redirect: redirect})
	}
	h.dropStaged(ctx, s.form)
	h.Log.InfoContext(ctx, "submission accepted", "action", a.Name, "submission", s.sub.ID, "files", len(s.sub.Files))
	return h.answer(c, s.accepted)
}

// submission is the state of one Submit while its body is read.
type submission struct {
	h        *Handler
	a        *Action
	subject  string
	sub      *Submission
	form     *form
	idemKey  string  // the claimed idempotency key, if any
	replay   *Answer // the first answer of a repeated idempotency key
	spam     bool    // the honeypot was filled in
	boundSet bool
	accepted Answer
}

// read reads the body. Reserved fields act as they arrive, so a repeated
// idempotency key or a bad _bound stops the read before files are stored.
func (s *submission) read(c echo.Context, mediaType string) error {
	req := c.Request()
	if key := req.Header.Get("Idempotency-Key"); key != "" {
		if err := s.reserved(req.Context(), FieldIdempotency, key); err != nil || s.replay != nil {
			return err
		}
	}
	if mediaType == echo.MIMEMultipartForm {
		return s.h.readMultipart(req.Context(), s, req)
	}
	return s.readURLEncoded(req.Context(), req.Body)
}

// reserved handles a reserved field's value as soon as it is read.
func (s *submission) reserved(ctx context.Context, name, value string) error {
	switch name {
	case FieldIdempotency:
		if s.idemKey != "" || s.h.Idempotency == nil || s.a.Idempotency <= 0 {
			return nil
		}
		value = strings.TrimSpace(value)
		if value == "" || len(value) > 255 {
			return nil
		}
		key := idempotencyKey(s.a.Name, s.subject, value)
		ans, err := s.h.Idempotency.Claim(ctx, key, s.sub.ID)
		switch {
		case errors.Is(err, ErrIdempotencyBusy):
			return ErrUnavailable.With(err, "An earlier submission with the same key is still being processed; try again shortly.")
		case err != nil:
			return ErrUnavailable.With(err)
		case ans != nil:
			s.replay = ans
		default:
			s.idemKey = key
		}
	case FieldBound:
		if s.boundSet {
			return ErrInvalidBoundArgs.With(errors.New("_bound sent more than once"))
		}
		s.boundSet = true
		args, err := openBound(s.h.Sealer, s.a, value, s.subject)
		if err != nil {
			return err
		}
		s.sub.Bound = args
	default:
		if name == s.a.Honeypot && strings.TrimSpace(value) != "" {
			s.spam = true
		}
	}
	return nil
}

// finish validates what was read, enqueues the submission and keeps the
// answer for its idempotency key.
func (s *submission) finish(ctx context.Context) error {
	a, f := s.a, s.form
	if s.spam {
		return nil
	}
	if len(a.Bound) > 0 && s.sub.Bound == nil {
		return ErrInvalidBoundArgs.With(errors.New("no _bound field"))
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
	if a.Check != nil && len(errs) == 0 {
		for k, v := range a.Check(ctx, values) {
			errs[k] = append(errs[k], v...)
		}
	}
	if len(errs) > 0 {
		return ErrValidation.withForm(a, errs, echoValues(a, f.values))
	}
	for _, fl := range a.Fields {
		if fl.Sensitive() {
			delete(values, fl.Name)
		}
	}
	sub := s.sub
	sub.Values = values
	sub.Files = f.files
	if sub.Files == nil {
		sub.Files = []File{}
	}
	sub.Revalidate = expandRevalidate(a.Revalidate, sub)
	if err := s.h.Queue.Enqueue(ctx, sub); err != nil {
		return ErrUnavailable.With(err)
	}
	body, redirect := s.h.acceptedAnswer(a, sub)
	s.accepted = Answer{Status: http.StatusAccepted, Body: body, Redirect: redirect}
	if s.idemKey != "" {
		if err := s.h.Idempotency.Complete(context.WithoutCancel(ctx), s.idemKey, s.accepted, a.Idempotency); err != nil {
			// The submission is queued; only a repeat could now be
			// queued twice. Say so, but answer the accepted submission.
			s.h.Log.ErrorContext(ctx, "could not keep the idempotent answer", "submission", sub.ID, "err", err)
		}
		s.idemKey = ""
	}
	return nil
}

// abandon removes what a submission that is not accepted left: its files
// and its claim on an idempotency key. It runs even when the client left.
func (s *submission) abandon(ctx context.Context) {
	s.h.discard(ctx, s.form.files)
	s.form.files = nil
	if s.idemKey != "" {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.h.Idempotency.Release(rctx, s.idemKey, s.sub.ID); err != nil {
			s.h.Log.WarnContext(ctx, "could not release an idempotency key; it frees itself", "err", err)
		}
		s.idemKey = ""
	}
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

// acceptedAnswer is the JSON body and browser redirect of an accepted
// submission.
func (h *Handler) acceptedAnswer(a *Action, sub *Submission) (json.RawMessage, string) {
	redirect := "/forms/" + a.Name + "/done?submission=" + url.QueryEscape(sub.ID)
	if a.Redirect != "" {
		redirect = expand(a.Redirect, sub, url.QueryEscape)
	}
	body, _ := json.Marshal(Accepted{
		OK: true, Message: a.Message, Redirect: redirect,
		Submission: SubmissionInfo{
			ID: sub.ID, Action: a.Name, Status: "queued",
			StatusURL: "/submissions/" + sub.ID, Files: sub.Files,
		},
	})
	return body, redirect
}

// answer writes an accepted (or replayed) answer: JSON for scripts, a 303
// to the redirect for browsers.
func (h *Handler) answer(c echo.Context, a Answer) error {
	if !WantsJSON(c.Request()) {
		return c.Redirect(http.StatusSeeOther, a.Redirect)
	}
	return c.JSONBlob(a.Status, a.Body)
}

// readMultipart reads parts in order: values into f.values, files straight
// into the store. Problems with a file (size, type, count) become field
// errors and the rest of that file is skipped; a broken body ends the read.
func (h *Handler) readMultipart(ctx context.Context, s *submission, req *http.Request) error {
	a := s.a
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
			if u := a.Upload(p.Field); u != nil {
				// An upload reference in place of the file.
				v, err := mr.ReadValue(p)
				if err != nil {
					return err
				}
				if err := h.attachRef(ctx, s, u, v); err != nil {
					return err
				}
				continue
			}
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
			if err := s.value(ctx, p.Field, v); err != nil || s.replay != nil {
				return err
			}
			continue
		}
		if s.spam {
			// Nothing of a bot's post is kept.
			if _, err := io.Copy(io.Discard, p); err != nil {
				return err
			}
			continue
		}
		if err := h.readFile(ctx, s, p); err != nil {
			return err
		}
		if s.form.stopped {
			return s.stopped()
		}
	}
}

func (h *Handler) readFile(ctx context.Context, s *submission, p *uploads.Part) error {
	a, sub, f := s.a, s.sub, s.form
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
		h.Metrics.ObserveRejection(a.Name, RejectSize)
		f.errs.Add(u.Name, u.TooLargeMessage())
		return h.skipRefused(s, p)
	case errors.As(err, &typeErr):
		h.Metrics.ObserveRejection(a.Name, RejectType)
		f.errs.Add(u.Name, u.TypeMessage(typeErr.Sniffed))
		return h.skipRefused(s, p)
	default:
		return err
	}
	h.Metrics.ObserveUpload(a.Name, obj.Size)
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

// value keeps a plain value, acting on reserved ones at once.
func (s *submission) value(ctx context.Context, name, v string) error {
	if name == FieldIdempotency || name == FieldBound || name == s.a.Honeypot {
		return s.reserved(ctx, name, v)
	}
	s.form.values[name] = append(s.form.values[name], v)
	return nil
}

func (s *submission) readURLEncoded(ctx context.Context, body io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(body, maxURLEncodedBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxURLEncodedBytes {
		return ErrPayloadTooLarge.With(nil, fmt.Sprintf("A form without files is limited to %s.", FormatSize(maxURLEncodedBytes)))
	}
	if strings.Count(string(data), "&") >= maxURLEncodedFields {
		return ErrBadRequest.With(uploads.ErrTooManyParts, fmt.Sprintf("The request has more than %d fields.", maxURLEncodedFields))
	}
	vals, err := url.ParseQuery(string(data))
	if err != nil {
		return ErrBadRequest.With(err, "The form body is not valid URL encoding.")
	}
	// Reserved fields first, as a multipart body from a hosted form has them.
	for _, k := range []string{FieldIdempotency, FieldBound, s.a.Honeypot} {
		if v, ok := vals[k]; ok && k != "" {
			for _, one := range v {
				if err := s.reserved(ctx, k, one); err != nil || s.replay != nil {
					return err
				}
			}
			delete(vals, k)
		}
	}
	for _, u := range s.a.Uploads {
		for _, ref := range vals[u.Name] {
			if err := s.h.attachRef(ctx, s, u, ref); err != nil {
				return err
			}
		}
	}
	for k, v := range vals {
		if wanted(s.a, k) {
			s.form.values[k] = v
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

// originGuard returns the action's origin guard, built on first use.
func (h *Handler) originGuard(a *Action) (*originGuard, error) {
	h.guardsMu.Lock()
	defer h.guardsMu.Unlock()
	if g, ok := h.guards[a.Name]; ok {
		return g, nil
	}
	g, err := newOriginGuard(h.AllowedOrigins, a.Origins, h.StrictOrigins || a.StrictOrigin)
	if err != nil {
		return nil, ErrInternal.With(err)
	}
	if h.guards == nil {
		h.guards = map[string]*originGuard{}
	}
	h.guards[a.Name] = g
	return g, nil
}

// admit runs the checks that come before any byte of a body is read: the
// origin of the request and the client's rate limit.
func (h *Handler) admit(c echo.Context, a *Action) error {
	guard, err := h.originGuard(a)
	if err != nil {
		return err
	}
	if err := guard.check(c.Request()); err != nil {
		return err
	}
	return h.rateLimit(c.Request().Context(), a, c.RealIP())
}

// rateLimit applies the action's rate_limit to the client.
func (h *Handler) rateLimit(ctx context.Context, a *Action, client string) error {
	if a.RateLimit == nil || h.Limiter == nil {
		return nil
	}
	wait, err := h.Limiter.Allow(ctx, a.Name, client, *a.RateLimit)
	if err != nil {
		return ErrUnavailable.With(err)
	}
	if wait > 0 {
		e := ErrRateLimited.With(nil)
		e.RetryAfter = wait
		return e
	}
	return nil
}
