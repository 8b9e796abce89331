package submit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/spam"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
	"github.com/oklog/ulid/v2"
)

// maxURLEncodedFields bounds the fields of an urlencoded body.
const maxURLEncodedFields = 1000

// Config is what the submit endpoint takes from the deployment and the
// actions file.
type Config struct {
	// ReaderLimits bound multipart bodies beyond max_body.
	ReaderLimits uploads.ReaderLimits
	// ReadIdle is how long a request body may send nothing;
	// uploads.DefaultReadIdle when 0.
	ReadIdle time.Duration
	// Profiles are the actions file's upload_profiles, for how long a
	// reference's claim lasts.
	Profiles actions.UploadProfiles
	// NewID makes submission ids; ULIDs when nil.
	NewID func() string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Deps are the parts the submit endpoint calls. Actions, Files, Queue
// and Log are needed; a nil optional part turns its feature off.
type Deps struct {
	Actions *actions.Registry
	Files   FileStore
	Queue   Enqueuer
	Log     *slog.Logger
	// Gate runs the checks before a body is read; one with no limits
	// when nil.
	Gate *web.Gate
	// Site makes links; the request's own origin when nil.
	Site *web.Site
	// Sealer seals and opens bound arguments, upload references and
	// status capabilities.
	Sealer actions.Sealer
	// Objects checks and copies upload references; nil turns them off.
	Objects ObjectStore
	// Captcha verifies the answers of actions with a captcha.
	Captcha CaptchaVerifier
	// Spam scores the submissions of actions with spam:; the content
	// rules alone (no duplicates, rate or model) when nil.
	Spam SpamChecker
	// Waiter holds the answers of actions with wait: until their steps
	// end; nil answers them at once.
	Waiter Waiter
	// Memory is what the endpoint keeps in Redis between requests.
	Memory
}

// Memory is what the submit endpoint keeps between requests: reference
// claims, idempotency answers and their notes for erasure. A nil part
// turns its feature off.
type Memory struct {
	// Claims makes upload references single-use; nil leaves them usable
	// by every submission until they expire.
	Claims RefClaims
	// Idempotency keeps answers by idempotency key; nil turns keys off.
	Idempotency Idempotency
	// Inbox notes idempotency keys for erasure; nil notes nothing.
	Inbox IdempotencyNotes
	// Queued finds the submission of a key whose first request never
	// answered; nil leaves such a key busy until its claim lapses.
	Queued Queued
	// Stamps makes min_fill_time's render stamps single-use; nil leaves
	// them usable until they expire.
	Stamps Claimer
	// States makes formq_state tokens single-read; nil leaves them
	// readable until they expire.
	States Claimer
}

// Claimer claims a key once: the first claim within ttl answers true,
// every later one false; *redisstate.Replays is the one formq uses.
type Claimer interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Handler serves POST /actions/{name} and the form state an error
// redirect carries (GET /actions/{name}/state/{token}).
type Handler struct {
	cfg     Config
	actions *actions.Registry
	files   FileStore
	queue   Enqueuer
	log     *slog.Logger
	gate    *web.Gate
	site    *web.Site
	sealer  actions.Sealer
	objects ObjectStore
	claims  RefClaims
	stamps  Claimer
	states  Claimer
	idem    Idempotency
	queued  Queued
	captcha CaptchaVerifier
	spam    SpamChecker
	inbox   IdempotencyNotes
	waiter  Waiter
	metrics *web.Metrics
}

// New builds the submit endpoint. It refuses an actions file that asks
// for what the parts cannot do: an action with a captcha and no verifier.
func New(cfg Config, d Deps) (*Handler, error) {
	if d.Actions == nil {
		d.Actions = actions.NewRegistry()
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Gate == nil {
		d.Gate = web.NewGate(web.GateConfig{}, nil, nil, nil, d.Log)
	}
	if d.Site == nil {
		d.Site = web.NewSite(web.SiteConfig{})
	}
	for _, name := range d.Actions.Names() {
		a, _ := d.Actions.Get(name)
		if a.Captcha != nil && d.Captcha == nil {
			return nil, fmt.Errorf("action %q has a captcha but the submit endpoint has no captcha verifier", a.Name)
		}
	}
	if d.Spam == nil {
		d.Spam = &spam.Checker{}
	}
	return &Handler{
		cfg: cfg, actions: d.Actions, files: d.Files, queue: d.Queue, log: d.Log, gate: d.Gate, site: d.Site,
		sealer: d.Sealer, objects: d.Objects, claims: d.Claims, stamps: d.Stamps, states: d.States, idem: d.Idempotency, queued: d.Queued, captcha: d.Captcha,
		spam: d.Spam, inbox: d.Inbox, waiter: d.Waiter, metrics: d.Gate.Metrics(),
	}, nil
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
	a, ok := h.actions.Get(c.Param("name"))
	if !ok {
		return web.ErrActionNotFound
	}
	req := c.Request()
	ctx := req.Context()
	if err := h.gate.Admit(c, a); err != nil {
		return err
	}
	mediaType, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || (mediaType != echo.MIMEMultipartForm && mediaType != echo.MIMEApplicationForm) {
		return web.ErrUnsupportedMedia
	}
	if req.ContentLength > a.MaxBody {
		return web.ErrPayloadTooLarge.With(nil, fmt.Sprintf("The request is over the limit of %s.", actions.FormatSize(a.MaxBody)))
	}
	subject, err := h.gate.Authenticate(a, req)
	if err != nil {
		return err
	}
	req.Body = http.MaxBytesReader(c.Response(), req.Body, a.MaxBody)
	req.Body = uploads.NewBodyReaderSize(ctx, c.Response(), req.Body, h.cfg.ReadIdle, req.ContentLength)

	s := &intake{
		c: c, h: h, a: a, subject: subject,
		sub: &submission.Submission{
			ID: h.newID(), Action: a.Name, Queue: queueOf(a), Steps: a.Steps, Subject: subject,
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
	var kept map[string][]web.KeptFile
	var failed *web.Error
	invalid := false
	if err != nil {
		failed = web.AsError(err)
		invalid = failed.Code == web.ErrValidation.Code && failed.Action != nil
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
		h.metrics.ObserveRejection(a.Name, s.spamReason)
		h.log.WarnContext(ctx, "spam: nothing kept", "action", a.Name, "reason", s.spamReason, "client", s.sub.ClientIP)
		body, redirect := h.acceptedAnswer(c, a, s.sub, s.redirect, true)
		return h.answer(c, Answer{Status: http.StatusAccepted, Body: body, Redirect: redirect})
	}
	h.dropStaged(ctx, s.form)
	h.log.InfoContext(ctx, "submission accepted", "action", a.Name, "submission", s.sub.ID, "files", len(s.sub.Files))
	if a.Wait > 0 && h.waiter != nil && !s.sub.Spam.Held() {
		if done, err := h.waitAnswer(c, s); done {
			return err
		}
	}
	return h.answer(c, s.accepted)
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
	// Data is what the named steps answered, once completed (wait:).
	Data map[string]map[string]string `json:"data,omitempty"`
}

// acceptedAnswer is the JSON body and browser redirect of an accepted
// submission: the form's _redirect (checked), else the action's redirect,
// else the done page; absolute, so a page on another origin can follow it.
// A decoy (a filled honeypot) gets a statusUrl that answers like a real
// one, though nothing was kept.
func (h *Handler) acceptedAnswer(c echo.Context, a *actions.Action, sub *submission.Submission, override string, decoy bool) (json.RawMessage, string) {
	// The done page shows the live status: it gets the same capability
	// as the statusUrl, sealed once, with the page to link back to.
	tok := web.SealCapability(h.sealer, sub, decoy, h.backLink(c, a))
	done := "/forms/" + a.Name + "/done?submission=" + url.QueryEscape(sub.ID)
	if tok != "" {
		done += "&t=" + url.QueryEscape(tok)
	}
	redirect := h.site.Link(c, done)
	switch {
	case override != "":
		redirect = expand(override, sub, url.QueryEscape)
	case strings.HasPrefix(a.Redirect, "/forms/"+a.Name+"/done"):
		// The action names its own done page: the default link, which
		// carries the capability the page needs.
	case actions.UsesStepData(a.Redirect):
		// Not known before the steps answer: the done page follows the
		// status, which carries the redirect once completed.
	case a.Redirect != "":
		redirect = h.site.Absolute(c, expand(a.Redirect, sub, url.QueryEscape))
	}
	files := sub.Files
	if files == nil {
		// A honeypot's answer must look like any other: "files": [], not null.
		files = []submission.File{}
	}
	message := a.Message
	if actions.UsesStepData(message) {
		message = "" // the status carries it once the steps answered
	}
	body, _ := json.Marshal(Accepted{
		OK: true, Message: message, Redirect: redirect,
		Submission: SubmissionInfo{
			ID: sub.ID, Action: a.Name, Status: "queued",
			StatusURL: h.site.StatusURL(c, sub, tok), Files: files,
		},
	})
	return body, redirect
}

// answer writes an accepted (or replayed) answer: JSON for scripts, a 303
// to the redirect for browsers.
func (h *Handler) answer(c echo.Context, a Answer) error {
	if !web.WantsJSON(c.Request()) {
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
	if err := h.files.Delete(dctx, keys...); err != nil {
		h.log.ErrorContext(ctx, "could not delete the files of a refused submission; the janitor will", "keys", keys, "err", err)
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

// expand fills {id}, {action} and {field} placeholders from a submission
// (see actions.Expand).
func expand(tmpl string, sub *submission.Submission, escape func(string) string) string {
	return actions.Expand(tmpl, sub, nil, escape)
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
	if h.cfg.NewID != nil {
		return h.cfg.NewID()
	}
	// crypto/rand entropy: ids cannot be guessed from the start time.
	return ulid.MustNew(ulid.Timestamp(h.now()), rand.Reader).String()
}

func (h *Handler) now() time.Time {
	if h.cfg.Now != nil {
		return h.cfg.Now()
	}
	return time.Now()
}
