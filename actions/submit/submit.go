package handler

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/submission"
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
	Actions *actions.Registry
	Files   FileStore
	Queue   Enqueuer
	Pages   *Pages
	Log     *slog.Logger
	// Sealer seals and opens bound arguments and upload references.
	Sealer actions.Sealer
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
	Profiles actions.UploadProfiles
	// Objects stages uploads and checks upload references; nil turns
	// presigned uploads and references off.
	Objects ObjectStore
	// Claims makes upload references single-use; nil leaves them usable
	// by every submission until they expire.
	Claims RefClaims
	// Fleet shows the worker side: submission status, revalidation
	// events and the queue dashboard.
	Fleet
	// Metrics counts uploads and rejections; nil records nothing.
	Metrics *Metrics
	// Captchas verifies the answers of actions with a captcha.
	Captchas *CaptchaVerifier
	// Health says whether Redis and S3 answered their last background
	// probe; while it returns an error, submissions and uploads are
	// refused with 503 before their first call to either. Nil refuses
	// nothing.
	Health func() error
	// Inbox lists, reads and erases stored submissions for the admin
	// API; nil leaves those routes answering 404.
	Inbox Inbox
	// Links makes download links of files for the admin detail.
	Links FileLinks
	// Redeliveries runs webhook steps again for the admin; nil leaves
	// the redeliver routes answering 404.
	Redeliveries Redeliverer
	// MetricsElsewhere leaves /metrics off the API's routes: it is served
	// on an address of its own (FORMQ_METRICS_ADDR).
	MetricsElsewhere bool
	// AdminToken (FORMQ_ADMIN_TOKEN) reads every submission's full
	// status; EventsToken (FORMQ_EVENTS_TOKEN) or the admin token reads
	// every revalidation event.
	AdminToken, EventsToken string
	// Streams caps open event streams per client and in all.
	Streams StreamLimits
	// Resumable serves tus uploads at TusPath; nil answers 404 there.
	Resumable *Resumable
}

// form is what a request body held, before validation.
type form struct {
	values    map[string][]string
	files     []submission.File
	fileCount map[string]int
	errs      actions.FieldErrors
	stopped   bool       // a refused file went on too long; the rest was not read
	staged    []string   // staged uploads whose references were used
	claimed   []string   // staged uploads this submission claimed (RefClaims)
	marks     []fileMark // every file and reference sent, for the fingerprint
	// fromStaged maps a file's submission key to the staged upload it
	// was copied from.
	fromStaged map[string]string
	// pendingKept are kept references, attached once the body is read.
	pendingKept []keptRef
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
		return ErrPayloadTooLarge.With(nil, fmt.Sprintf("The request is over the limit of %s.", actions.FormatSize(a.MaxBody)))
	}
	subject, err := h.authenticate(a, req)
	if err != nil {
		return err
	}
	req.Body = http.MaxBytesReader(c.Response(), req.Body, a.MaxBody)
	req.Body = uploads.NewBodyReaderSize(c.Response(), req.Body, h.ReadIdle, req.ContentLength)

	s := &intake{
		c: c, h: h, a: a, subject: subject,
		sub: &submission.Submission{
			ID: h.newID(), Action: a.Name, Queue: a.Queue, Steps: a.Steps, Subject: subject,
			Request:    submission.Request{ClientIP: c.RealIP(), UserAgent: req.UserAgent(), RequestID: c.Response().Header().Get(echo.HeaderXRequestID)},
			ReceivedAt: h.now().UTC(),
		},
		form: &form{values: map[string][]string{}, fileCount: map[string]int{}, errs: actions.FieldErrors{}},
	}
	telemetry.AddLogAttrs(ctx, slog.String(telemetry.KeySubmission, s.sub.ID), slog.String(telemetry.KeyAction, a.Name))
	err = s.read(c, mediaType)
	if err == nil && s.replay == nil {
		err = s.finish(ctx)
	}
	var kept map[string][]KeptFile
	var failed *Error
	invalid := false
	if err != nil {
		failed = AsError(err)
		invalid = failed.Code == ErrValidation.Code && failed.Action != nil
	}
	if invalid {
		kept = h.keep(ctx, s)
	}
	if err != nil || s.replay != nil || s.spam {
		s.abandon(ctx)
	}
	switch {
	case invalid:
		return h.invalid(c, s, failed, kept)
	case err != nil:
		return err
	case s.replay != nil:
		c.Response().Header().Set("Idempotent-Replayed", "true")
		return h.answer(c, *s.replay)
	case s.spam:
		h.Metrics.ObserveRejection(a.Name, s.spamReason)
		h.Log.WarnContext(ctx, "spam: nothing kept", "action", a.Name, "reason", s.spamReason, "client", s.sub.ClientIP)
		body, redirect := h.acceptedAnswer(c, a, s.sub, s.redirect, true)
		return h.answer(c, Answer{Status: http.StatusAccepted, Body: body, Redirect: redirect})
	}
	h.dropStaged(ctx, s.form)
	h.Log.InfoContext(ctx, "submission accepted", "action", a.Name, "submission", s.sub.ID, "files", len(s.sub.Files))
	return h.answer(c, s.accepted)
}

// withForm is a validation failure that carries what the form needs.
func (e *Error) withForm(a *actions.Action, fields actions.FieldErrors, values map[string]any) *Error {
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
	ID        string            `json:"id"`
	Action    string            `json:"action"`
	Status    string            `json:"status"`
	StatusURL string            `json:"statusUrl"`
	Files     []submission.File `json:"files"`
}

// acceptedAnswer is the JSON body and browser redirect of an accepted
// submission: the form's _redirect (checked), else the action's redirect,
// else the done page; absolute, so a page on another origin can follow it.
// A decoy (a filled honeypot) gets a statusUrl that answers like a real
// one, though nothing was kept.
func (h *Handler) acceptedAnswer(c echo.Context, a *actions.Action, sub *submission.Submission, override string, decoy bool) (json.RawMessage, string) {
	// The done page shows the live status: it gets the same capability
	// as the statusUrl, sealed once.
	tok := h.capabilityToken(sub, decoy)
	done := "/forms/" + a.Name + "/done?submission=" + url.QueryEscape(sub.ID)
	if tok != "" {
		done += "&t=" + url.QueryEscape(tok)
	}
	redirect := h.link(c, done)
	switch {
	case override != "":
		redirect = expand(override, sub, url.QueryEscape)
	case strings.HasPrefix(a.Redirect, "/forms/"+a.Name+"/done"):
		// The action names its own done page: the default link, which
		// carries the capability the page needs.
	case a.Redirect != "":
		redirect = h.absolute(c, expand(a.Redirect, sub, url.QueryEscape))
	}
	files := sub.Files
	if files == nil {
		// A honeypot's answer must look like any other: "files": [], not null.
		files = []submission.File{}
	}
	body, _ := json.Marshal(Accepted{
		OK: true, Message: a.Message, Redirect: redirect,
		Submission: SubmissionInfo{
			ID: sub.ID, Action: a.Name, Status: "queued",
			StatusURL: h.statusURL(c, sub, tok), Files: files,
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

// discard deletes the files of a submission that is not accepted. It runs
// even when the request's context has ended (the client went away).
func (h *Handler) discard(ctx context.Context, files []submission.File) {
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
func echoValues(a *actions.Action, raw map[string][]string) map[string]any {
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

// expand fills {id}, {action} and {field} placeholders from a
// submission: {id} and {action} first, then fields with a single value;
// an unknown placeholder and one of a list field stay as they are. One
// pass over the template, without building a replacer per request.
func expand(tmpl string, sub *submission.Submission, escape func(string) string) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	var b strings.Builder
	b.Grow(len(tmpl) + 32)
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:open])
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			b.WriteString(tmpl[open:])
			return b.String()
		}
		if v, ok := placeholder(tmpl[open+1:open+end], sub); ok {
			b.WriteString(escape(v))
			tmpl = tmpl[open+end+1:]
			continue
		}
		// Not a placeholder: keep the brace and look on after it.
		b.WriteByte('{')
		tmpl = tmpl[open+1:]
	}
}

// placeholder is the value of {name} in a submission's templates.
func placeholder(name string, sub *submission.Submission) (string, bool) {
	switch name {
	case "id":
		return sub.ID, true
	case "action":
		return sub.Action, true
	}
	v, ok := sub.Values[name]
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case []string:
		return "", false
	default:
		return fmt.Sprint(v), true
	}
}

func expandRevalidate(r submission.Revalidate, sub *submission.Submission) submission.Revalidate {
	out := submission.Revalidate{Paths: []string{}, Tags: []string{}}
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
	// crypto/rand entropy: ids cannot be guessed from the start time.
	return ulid.MustNew(ulid.Timestamp(h.now()), rand.Reader).String()
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
func (h *Handler) originGuard(a *actions.Action) (*originGuard, error) {
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
// health of Redis and S3, the origin of the request and the client's rate
// limit.
func (h *Handler) admit(c echo.Context, a *actions.Action) error {
	if h.Health != nil {
		if err := h.Health(); err != nil {
			// The outage was logged once when it began; each refusal
			// is counted, not logged.
			h.Metrics.ObserveRejection(a.Name, RejectDependencyDown)
			e := ErrUnavailable.With(err)
			e.Quiet = true
			return e
		}
	}
	guard, err := h.originGuard(a)
	if err != nil {
		return err
	}
	if err := guard.check(c.Request(), a.Name); err != nil {
		h.Log.WarnContext(c.Request().Context(), "cross-origin post refused",
			"origin", c.Request().Header.Get("Origin"), "action", a.Name,
			"allow_with", "FORMQ_ALLOWED_ORIGINS or the action's origins")
		return err
	}
	return h.rateLimit(c.Request().Context(), a, c.RealIP())
}

// rateLimit applies the action's rate_limit to the client.
func (h *Handler) rateLimit(ctx context.Context, a *actions.Action, client string) error {
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
