package submit

// Captcha verification and the time-to-submit check: both act on a
// reserved field as soon as it is read, so a bot's post stops before its
// files are stored.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/captcha"
	"github.com/formq/formq/actions/spam"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
)

// CaptchaVerifier checks one captcha answer of an action; *captcha.Verifier
// is the implementation. A refused answer is a *captcha.Refusal.
type CaptchaVerifier interface {
	Verify(ctx context.Context, a *actions.Action, response, remoteIP string) error
}

var _ CaptchaVerifier = (*captcha.Verifier)(nil)

// captcha verifies the captcha answer of the submission once: a refused
// answer is a validation failure under errors._captcha; an unreachable
// provider is 503 unless the action says on_error: allow.
func (s *intake) captcha(ctx context.Context, response string) error {
	if s.captchaDone {
		return nil
	}
	s.captchaDone = true
	a := s.a
	if s.spam {
		// A bot's post already looks accepted; asking the provider adds nothing.
		return nil
	}
	if s.h.captcha == nil {
		return web.ErrInternal.With(fmt.Errorf("action %s has a captcha but the handler has no captcha verifier", a.Name))
	}
	err := s.h.captcha.Verify(ctx, a, response, s.sub.ClientIP)
	var ce *captcha.Refusal
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		s.h.metrics.ObserveRejection(a.Name, web.RejectCaptcha)
		s.h.log.InfoContext(ctx, "captcha refused", "action", a.Name, "codes", ce.Codes)
		return web.ErrValidation.WithForm(a, actions.FieldErrors{captcha.ErrorKey: {a.Say(actions.MessageCaptcha, ce.Message)}}, echoValues(a, s.form.values))
	case a.Captcha.AllowOnError && errors.Is(err, captcha.ErrUnreachable):
		s.h.log.WarnContext(ctx, "captcha provider unreachable; accepting without a check (on_error: allow)", "action", a.Name, "err", err)
		s.signals.CaptchaUnchecked = true
		return nil
	default:
		return web.ErrUnavailable.With(err, "The spam check is briefly unavailable; nothing was saved. Try again shortly.")
	}
}

// fileBeforeAnswer refuses a post of a captcha action whose first file
// came before the captcha's answer: nothing may be stored for a post
// without a verified answer, and the answer cannot be read past the
// file without storing it. The rest of the body is not read.
func (s *intake) fileBeforeAnswer() error {
	s.h.metrics.ObserveRejection(s.a.Name, web.RejectCaptcha)
	s.h.log.Info("captcha: a file came before the answer", "action", s.a.Name)
	msg := s.a.Say(actions.MessageCaptchaFirst, "Complete the challenge before sending files: its answer must come before the first file in the form.")
	return web.Closing(web.ErrValidation.WithForm(s.a, actions.FieldErrors{captcha.ErrorKey: {msg}}, echoValues(s.a, s.form.values)))
}

// rendered checks a _rendered stamp: missing, forged or too recent means
// the post is treated like a filled honeypot.
func (s *intake) rendered(value string) {
	if s.renderedSeen || s.a.MinFillTime <= 0 {
		return
	}
	s.renderedSeen = true
	at, err := web.OpenRendered(s.h.sealer, s.a, value)
	switch {
	case err != nil, s.h.now().Sub(at) < s.a.MinFillTime:
		// Forged, another action's, too recent, or too old: a stamp
		// proves a render for a day only, so a script cannot keep one.
		s.tooFast()
	default:
		s.stamp = strings.TrimSpace(value)
	}
}

// claimStamp uses the post's render stamp up, once it is about to be
// accepted: a second post with the same stamp looks accepted and keeps
// nothing, so one render cannot vouch for a script's many posts.
func (s *intake) claimStamp(ctx context.Context) error {
	if s.a.MinFillTime <= 0 || s.h.stamps == nil || s.stamp == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(s.stamp))
	ok, err := s.h.stamps.Claim(ctx, submission.StampKey(hex.EncodeToString(sum[:16])), web.RenderedTTL)
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	if !ok {
		s.tooFast()
	}
	return nil
}

// tooFast marks the post as a bot's: it looks accepted, nothing is kept;
// under spam: it is a signal the spam check scores.
func (s *intake) tooFast() {
	if s.a.Spam != nil {
		s.signals.TooFast = true
		return
	}
	if !s.spam {
		s.spam, s.spamReason = true, web.RejectTooFast
	}
}

// captchaField is the response field of the action's captcha, or "".
func captchaField(a *actions.Action) string {
	if a.Captcha == nil {
		return ""
	}
	return a.Captcha.ResponseField()
}

// SpamChecker scores a submission against its action's spam: setting;
// *spam.Checker is the implementation.
type SpamChecker interface {
	Check(ctx context.Context, p *actions.SpamPolicy, in spam.Input) (*submission.Spam, error)
}

var _ SpamChecker = (*spam.Checker)(nil)

// checkSpam gives a submission of an action with spam: its verdict. Spam
// the action drops ends like a filled honeypot (s.spam); spam it keeps
// is queued with its verdict, and the worker holds it.
func (s *intake) checkSpam(ctx context.Context, values map[string]any) error {
	p := s.a.Spam
	if p == nil {
		return nil
	}
	v, err := s.h.spam.Check(ctx, p, spam.Input{Action: s.a.Name, Values: values, ClientIP: s.sub.ClientIP, Signals: s.signals})
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	if v.Verdict == submission.SpamHeld && p.Drop {
		s.spam, s.spamReason = true, web.RejectSpam
		return nil
	}
	s.sub.Spam = v
	return nil
}
