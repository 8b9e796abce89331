package submit

// The state of one submission while its body is read: parts in order,
// reserved fields acted on as they arrive, files streamed to the store.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/spam"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
)

// maxURLEncodedBytes bounds an application/x-www-form-urlencoded body,
// which is read whole: it carries no files, only values and references.
const maxURLEncodedBytes = 4 << 20

// intake is the state of one Submit while its body is read.
type intake struct {
	c       echo.Context
	h       *Handler
	a       *actions.Action
	subject string
	sub     *submission.Submission
	form    *form
	idemKey string  // the claimed idempotency key, if any
	replay  *Answer // the first answer of a repeated idempotency key
	spam    bool    // the honeypot was filled in, or the form was posted too fast
	// signals are what the spam check scores, for actions with spam:
	// (instead of spam).
	signals spam.Signals
	stamp   string // the render stamp, once found old enough
	// spamReason is the rejection reason spam is counted under.
	spamReason   string
	captchaDone  bool // the captcha answer was checked
	renderedSeen bool // the _rendered stamp was checked
	// captchaAnswer is an urlencoded body's captcha answer, checked in finish.
	captchaAnswer string
	boundSet      bool
	accepted      Answer
	// redirect and errorRedirect are the form's _redirect and
	// _error_redirect, checked and absolute.
	redirect, errorRedirect string
}

// read reads the body. Reserved fields act as they arrive, so a bad
// _bound stops the read before files are stored. A repeated idempotency
// key is read to the end too (its files hashed, not stored) and answered
// only once its content is known to be the first request's.
func (s *intake) read(c echo.Context, mediaType string) error {
	req := c.Request()
	if key := req.Header.Get("Idempotency-Key"); key != "" {
		if err := s.reserved(req.Context(), web.FieldIdempotency, key); err != nil {
			return err
		}
	}
	var err error
	if mediaType == echo.MIMEMultipartForm {
		err = s.h.readMultipart(req.Context(), s, req)
	} else {
		err = s.readURLEncoded(req.Context(), req.Body)
	}
	if err == nil && s.replay != nil {
		err = s.decideReplay()
	}
	return err
}

// reserved handles a reserved field's value as soon as it is read.
func (s *intake) reserved(ctx context.Context, name, value string) error {
	switch name {
	case web.FieldIdempotency:
		if s.idemKey != "" || s.replay != nil || s.h.idem == nil || s.a.Idempotency <= 0 {
			return nil
		}
		value = strings.TrimSpace(value)
		if value == "" || len(value) > 255 {
			return nil
		}
		key := idempotencyKey(s.a.Name, s.subject, value)
		ans, err := s.h.claimIdempotency(ctx, key, s.sub.ID)
		if errors.Is(err, submission.ErrBusy) {
			if queued, took, qerr := s.h.queuedAnswer(ctx, s, key); qerr != nil || queued != nil || took {
				ans, err = queued, qerr
			}
		}
		switch {
		case errors.Is(err, submission.ErrBusy):
			return web.ErrUnavailable.With(err, "An earlier submission with the same key is still being processed; try again shortly.")
		case err != nil:
			return web.ErrUnavailable.With(err)
		case ans != nil:
			s.replay = ans
		default:
			s.idemKey = key
		}
	case web.FieldBound:
		if s.boundSet {
			return web.ErrInvalidBoundArgs.With(errors.New("_bound sent more than once"))
		}
		s.boundSet = true
		args, err := openBound(s.h.sealer, s.a, value, s.subject)
		if err != nil {
			return err
		}
		s.sub.Bound = args
	case web.FieldRendered:
		s.rendered(value)
	case captchaField(s.a):
		if s.replay != nil {
			return nil // the first request's answer was checked; its token is spent
		}
		return s.captcha(ctx, value)
	case web.FieldRedirect:
		t, err := s.h.site.RedirectTarget(s.c, s.a, web.FieldRedirect, value)
		if err != nil {
			return err
		}
		s.redirect = t
	case web.FieldErrorRedirect:
		t, err := s.h.site.RedirectTarget(s.c, s.a, web.FieldErrorRedirect, value)
		if err != nil {
			return err
		}
		s.errorRedirect = t
	default:
		switch {
		case name != s.a.Honeypot || strings.TrimSpace(value) == "":
		case s.a.Spam != nil:
			s.signals.Honeypot = true
		case !s.spam:
			s.spam, s.spamReason = true, web.RejectHoneypot
		}
	}
	return nil
}

// finish validates what was read, enqueues the submission and keeps the
// answer for its idempotency key.
func (s *intake) finish(ctx context.Context) error {
	a, f := s.a, s.form
	if a.MinFillTime > 0 && !s.renderedSeen {
		s.tooFast()
	}
	if s.spam {
		return nil
	}
	if a.Captcha != nil && !s.captchaDone {
		if err := s.captcha(ctx, s.captchaAnswer); err != nil {
			return err
		}
	}
	if len(a.Bound) > 0 && s.sub.Bound == nil {
		return web.ErrInvalidBoundArgs.With(errors.New("no _bound field"))
	}
	if err := s.h.attachKept(ctx, s); err != nil {
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
	if a.Check != nil && len(errs) == 0 {
		for k, v := range a.Check(ctx, values) {
			errs[k] = append(errs[k], v...)
		}
	}
	if len(errs) > 0 {
		return web.ErrValidation.WithForm(a, errs, echoValues(a, f.values))
	}
	if err := s.claimStamp(ctx); err != nil || s.spam {
		return err
	}
	for _, fl := range a.Fields {
		if fl.Sensitive() {
			delete(values, fl.Name)
		}
	}
	sub := s.sub
	if err := s.checkSpam(ctx, values); err != nil || s.spam {
		return err
	}
	sub.Values = values
	sub.Files = f.files
	if sub.Files == nil {
		sub.Files = []submission.File{}
	}
	sub.Revalidate = expandRevalidate(a.Revalidate, sub)
	if s.idemKey != "" {
		held, err := s.h.idem.Hold(ctx, s.idemKey, sub.ID, a.Idempotency)
		if err != nil {
			return web.ErrUnavailable.With(err)
		}
		if !held {
			// Read for longer than a pending claim lasts, and another
			// request took the key meanwhile: its answer is the key's.
			s.h.log.WarnContext(ctx, "the idempotency key's claim lapsed while the request was read and another request took the key; this submission is queued without it", "submission", sub.ID)
			s.idemKey = ""
		}
	}
	if err := s.h.queue.Enqueue(ctx, sub); err != nil {
		return web.ErrUnavailable.With(err)
	}
	// Held spam gets the answer a filled honeypot gets: nothing tells a
	// bot which of its posts were caught.
	body, redirect := s.h.acceptedAnswer(s.c, a, sub, s.redirect, sub.Spam.Held())
	s.accepted = Answer{Status: http.StatusAccepted, Body: body, Redirect: redirect}
	if s.idemKey != "" {
		s.accepted.Fingerprint = s.fingerprint()
		if err := s.h.completeIdempotency(context.WithoutCancel(ctx), s.idemKey, s.accepted, a.Idempotency); err != nil {
			// The submission is queued; only a repeat could now be
			// queued twice. Say so, but answer the accepted submission.
			s.h.log.ErrorContext(ctx, "could not keep the idempotent answer", "submission", sub.ID, "err", err)
		} else if s.h.inbox != nil {
			if err := s.h.inbox.NoteIdempotency(context.WithoutCancel(ctx), sub.ID, s.idemKey, a.Idempotency); err != nil {
				s.h.log.WarnContext(ctx, "could not note the idempotency key for erasure; it expires with its window", "submission", sub.ID, "err", err)
			}
		}
		s.idemKey = ""
	}
	return nil
}

// abandon removes what a submission that is not accepted left: its files,
// its claims on staged uploads and on an idempotency key. It runs even
// when the client left.
func (s *intake) abandon(ctx context.Context) {
	s.h.discard(ctx, s.form.files)
	s.form.files = nil
	s.h.releaseClaims(ctx, s)
	if s.idemKey != "" {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.h.idem.Release(rctx, s.idemKey, s.sub.ID); err != nil {
			s.h.log.WarnContext(ctx, "could not release an idempotency key; it frees itself", "err", err)
		}
		s.idemKey = ""
	}
}

// readMultipart reads parts in order: values into f.values, files straight
// into the store. Problems with a file (size, type, count) become field
// errors and the rest of that file is skipped; a broken body ends the read.
func (h *Handler) readMultipart(ctx context.Context, s *intake, req *http.Request) error {
	a := s.a
	mr, err := uploads.NewMultipartReader(req.Body, req.Header.Get(echo.HeaderContentType), h.cfg.ReaderLimits)
	if err == nil {
		mr.SetLength(req.ContentLength)
	}
	if err != nil {
		return web.ErrBadRequest.With(err, "The multipart body has no boundary.")
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
			if err := s.value(ctx, p.Field, v); err != nil {
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

func (h *Handler) readFile(ctx context.Context, s *intake, p *uploads.Part) error {
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
	if a.Captcha != nil && !s.captchaDone && s.replay == nil {
		return s.fileBeforeAnswer()
	}
	if s.replay != nil {
		// A repeat: the file counts in the fingerprint, nothing is stored.
		sum, err := hashPart(p)
		f.marks = append(f.marks, fileMark{field: u.Name, kind: "sha256", value: sum})
		return err
	}
	n := f.fileCount[u.Name]
	if n >= u.MaxFiles {
		if n == u.MaxFiles {
			f.errs.Add(u.Name, u.TooManyMessage())
		}
		f.fileCount[u.Name]++
		return skip()
	}
	key := submission.UploadKey(a.Name, sub.ID, u.Name, n)
	obj, err := h.files.Put(ctx, key, p, uploads.PutOptions{MaxSize: u.MaxSize, Types: u.Types, Filename: p.Filename})
	var typeErr *uploads.TypeError
	switch {
	case err == nil:
	case errors.Is(err, uploads.ErrTooLarge):
		h.metrics.ObserveRejection(a.Name, web.RejectSize)
		f.errs.Add(u.Name, u.TooLargeMessage())
		return h.skipRefused(s, p)
	case errors.As(err, &typeErr):
		h.metrics.ObserveRejection(a.Name, web.RejectType)
		f.errs.Add(u.Name, u.TypeMessage(typeErr.Sniffed))
		return h.skipRefused(s, p)
	default:
		return err
	}
	h.metrics.ObserveUpload(a.Name, obj.Size)
	f.fileCount[u.Name]++
	f.files = append(f.files, submission.File{Field: u.Name, Object: obj})
	f.marks = append(f.marks, fileMark{field: u.Name, kind: "sha256", value: obj.SHA256})
	return nil
}

// wanted reports whether a plain value is kept: declared fields and the
// reserved ones. Unknown fields are read past and dropped.
func wanted(a *actions.Action, name string) bool {
	switch name {
	case web.FieldIdempotency, web.FieldBound, web.FieldRendered, web.FieldRedirect, web.FieldErrorRedirect:
		return true
	case captchaField(a):
		return name != ""
	case a.Honeypot:
		return a.Honeypot != ""
	}
	return a.Field(name) != nil
}

// value keeps a plain value, acting on reserved ones at once.
func (s *intake) value(ctx context.Context, name, v string) error {
	if name == web.FieldIdempotency || name == web.FieldBound || name == web.FieldRendered || name == web.FieldRedirect || name == web.FieldErrorRedirect || name == s.a.Honeypot || name == captchaField(s.a) {
		return s.reserved(ctx, name, v)
	}
	s.form.values[name] = append(s.form.values[name], v)
	return nil
}

func (s *intake) readURLEncoded(ctx context.Context, body io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(body, maxURLEncodedBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxURLEncodedBytes {
		return web.ErrPayloadTooLarge.With(nil, fmt.Sprintf("A form without files is limited to %s.", actions.FormatSize(maxURLEncodedBytes)))
	}
	if bytes.Count(data, []byte("&")) >= maxURLEncodedFields {
		return web.ErrBadRequest.With(uploads.ErrTooManyParts, fmt.Sprintf("The request has more than %d fields.", maxURLEncodedFields))
	}
	vals, err := url.ParseQuery(string(data))
	if err != nil {
		return web.ErrBadRequest.With(err, "The form body is not valid URL encoding.")
	}
	// Reserved fields first, as a multipart body from a hosted form has them.
	for _, k := range []string{web.FieldIdempotency, web.FieldBound, web.FieldRedirect, web.FieldErrorRedirect, s.a.Honeypot, web.FieldRendered} {
		if v, ok := vals[k]; ok && k != "" {
			for _, one := range v {
				if err := s.reserved(ctx, k, one); err != nil {
					return err
				}
			}
			delete(vals, k)
		}
	}
	if f := captchaField(s.a); f != "" {
		// Checked in finish, once the values it echoes on failure are read
		// (a repeat's is not: the first answer's was).
		if s.replay == nil {
			s.captchaAnswer = vals.Get(f)
		}
		delete(vals, f)
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

// openBound checks a _bound token against the action and the subject.
func openBound(s actions.Sealer, a *actions.Action, token, subject string) (map[string]any, error) {
	if len(a.Bound) == 0 {
		return nil, nil
	}
	var b actions.BoundArgs
	if err := s.Open(actions.BoundPurpose(a.Name), token, &b); err != nil {
		msg := "The form's bound arguments are missing, expired or were changed."
		if errors.Is(err, actions.ErrTokenExpired) {
			msg = "This form has expired; reload it and submit again."
		}
		return nil, web.ErrInvalidBoundArgs.With(err, msg)
	}
	if b.Action != a.Name {
		return nil, web.ErrInvalidBoundArgs.With(errors.New("token of another action"))
	}
	if b.Subject != "" && b.Subject != subject {
		return nil, web.ErrForbidden.With(errors.New("bound token issued to another subject"), "This form was issued to another user.")
	}
	return b.Args, nil
}
