package submit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
)

// Answer is what an accepted submission answered, kept so that a repeat
// with the same idempotency key gets the same answer.
type Answer struct {
	Status   int             `json:"status"`
	Body     json.RawMessage `json:"body"`
	Redirect string          `json:"redirect"`
	// Fingerprint is the request's (see fingerprint): a repeat is
	// answered only when its own matches. Never sent to clients.
	Fingerprint string `json:"fp,omitempty"`
}

// Idempotency remembers accepted submissions by idempotency key: the
// answer, as the JSON of Answer. Claim is atomic: of any number of
// concurrent requests with one key, exactly one claims it; the others
// wait for and replay its answer. *redisstate.Idempotency is the
// implementation.
type Idempotency interface {
	// Claim takes the key for holder, or returns the answer already kept
	// for it. It waits while another holder's claim is pending; when
	// that takes too long, the error matches submission.ErrBusy.
	Claim(ctx context.Context, key, holder string) ([]byte, error)
	// Complete keeps the answer for the window.
	Complete(ctx context.Context, key string, answer []byte, window time.Duration) error
	// Hold keeps holder's claim for ttl, from just before its submission
	// is queued; false when the claim lapsed and another request took it.
	Hold(ctx context.Context, key, holder string, ttl time.Duration) (bool, error)
	// Release gives the key back when the holder's submission was refused.
	Release(ctx context.Context, key, holder string) error
	// Holder is the holder of the key's claim, "" when none, and whether
	// it is held (its submission was being queued).
	Holder(ctx context.Context, key string) (holder string, held bool, err error)
	// Takeover gives the key to holder when from held it for ttl, long
	// enough ago, and never queued its submission.
	Takeover(ctx context.Context, key, from, holder string, ttl time.Duration) (bool, error)
}

// Queued finds a queued submission by id (in any state the queue keeps
// it: pending, running, retrying, finished within the retention); nil
// when the queue has no such submission. *jobs.Index is the
// implementation.
type Queued interface {
	Queued(ctx context.Context, queue, id string) (*submission.Submission, error)
}

// queuedAnswer answers a repeat whose key is still claimed by a request
// that never answered (its API process died after queueing the
// submission, before keeping the answer): when the claim's holder is in
// the queue, that submission is the key's, and its answer is made and
// kept now, so a client that retries gets the one submission, however
// late it retries within the window. A held claim whose holder is not in
// the queue died between holding the key and queueing: the repeat takes
// the key over (took) and goes on as a new submission. nil and false when
// the holder is still being read (its claim lapses by itself).
func (h *Handler) queuedAnswer(ctx context.Context, s *intake, key string) (ans *Answer, took bool, err error) {
	if h.queued == nil {
		return nil, false, nil
	}
	holder, held, err := h.idem.Holder(ctx, key)
	if err != nil || holder == "" {
		return nil, false, err
	}
	sub, err := h.queued.Queued(ctx, queueOf(s.a), holder)
	if err != nil {
		return nil, false, err
	}
	if sub == nil {
		if !held {
			return nil, false, nil
		}
		took, err := h.idem.Takeover(ctx, key, holder, s.sub.ID, s.a.Idempotency)
		return nil, took, err
	}
	body, redirect := h.acceptedAnswer(s.c, s.a, sub, "", false)
	a := Answer{Status: http.StatusAccepted, Body: body, Redirect: redirect}
	if err := h.completeIdempotency(context.WithoutCancel(ctx), key, a, s.a.Idempotency); err != nil {
		return nil, false, err
	}
	return &a, false, nil
}

// IdempotencyNotes notes the idempotency key of a submission, so that
// erasing the submission erases the key too; *jobs.Index is the
// implementation.
type IdempotencyNotes interface {
	NoteIdempotency(ctx context.Context, id, key string, ttl time.Duration) error
}

// claimIdempotency claims a key: the first answer kept for it, when there
// is one.
func (h *Handler) claimIdempotency(ctx context.Context, key, holder string) (*Answer, error) {
	b, err := h.idem.Claim(ctx, key, holder)
	if err != nil || b == nil {
		return nil, err
	}
	var a Answer
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("idempotency answer: %w", err)
	}
	return &a, nil
}

// completeIdempotency keeps the answer for the key.
func (h *Handler) completeIdempotency(ctx context.Context, key string, a Answer, window time.Duration) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return h.idem.Complete(ctx, key, b, window)
}

// idempotencyKey scopes a client's key to the action and, when signed in,
// to the subject, so keys of different users never collide.
func idempotencyKey(action, subject, clientKey string) string {
	sum := sha256.Sum256([]byte(subject + "\x00" + clientKey))
	return submission.IdempotencyKey(action, hex.EncodeToString(sum[:16]))
}

// fileMark is what a request's fingerprint holds of one file: the SHA-256
// of a file in the body, or the staged object a reference names.
type fileMark struct {
	field, kind, value string
}

// fingerprint digests what a submission is: the action, the field values,
// the bound arguments and the files (their SHA-256, or the staged object
// of a reference), in a canonical order. Two requests with one
// idempotency key are the same submission when their fingerprints match.
func (s *intake) fingerprint() string {
	h := sha256.New()
	field := func(parts ...string) {
		for _, p := range parts {
			fmt.Fprintf(h, "%d:%s", len(p), p)
		}
		h.Write([]byte{'\n'})
	}
	field("formq-request-v1", s.a.Name)
	names := make([]string, 0, len(s.form.values))
	for k := range s.form.values {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		field(append([]string{"value", k}, s.form.values[k]...)...)
	}
	if s.sub.Bound != nil {
		b, _ := json.Marshal(s.sub.Bound) // map keys come sorted
		field("bound", string(b))
	}
	marks := slices.Clone(s.form.marks)
	slices.SortStableFunc(marks, func(a, b fileMark) int { return strings.Compare(a.field, b.field) })
	for _, m := range marks {
		field("file", m.field, m.kind, m.value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// decideReplay answers a repeat of an idempotency key once its whole body
// was read: the same content replays the first answer, other content is a
// conflict. A bound action's repeat needs a valid _bound like any request
// (a forged one was refused while reading).
func (s *intake) decideReplay() error {
	if len(s.a.Bound) > 0 && s.sub.Bound == nil {
		return web.ErrInvalidBoundArgs.With(errors.New("no _bound field in a repeat"))
	}
	if fp := s.replay.Fingerprint; fp != "" && fp != s.fingerprint() {
		return web.ErrIdemConflict.With(errors.New("idempotency key reused with other content"))
	}
	return nil
}

// hashPart reads a file of a repeated request to its end for its SHA-256,
// storing nothing.
func hashPart(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
