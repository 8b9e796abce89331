package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
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

// Idempotency remembers accepted submissions by idempotency key. Claim is
// atomic: of any number of concurrent requests with one key, exactly one
// claims it; the others wait for and replay its answer.
type Idempotency interface {
	// Claim takes the key for holder, or returns the answer already kept
	// for it. It waits while another holder's claim is pending.
	Claim(ctx context.Context, key, holder string) (*Answer, error)
	// Complete keeps the answer for the window.
	Complete(ctx context.Context, key string, a Answer, window time.Duration) error
	// Release gives the key back when the holder's submission was refused.
	Release(ctx context.Context, key, holder string) error
}

// ErrIdempotencyBusy means the first request with a key did not finish in
// time; the client may retry.
var ErrIdempotencyBusy = errors.New("actions: idempotency key in use")

// RedisIdempotency keeps keys in Redis under formq:idem:{action}:{hash}.
type RedisIdempotency struct {
	rdb redis.UniversalClient
	// Pending is how long a claim lasts before its answer is kept; a
	// crashed holder's claim frees itself after it.
	Pending time.Duration
	// Wait is how long a repeat waits for the first request's answer.
	Wait time.Duration
}

// NewRedisIdempotency builds the Redis-backed store.
func NewRedisIdempotency(rdb redis.UniversalClient) *RedisIdempotency {
	return &RedisIdempotency{rdb: rdb, Pending: 2 * time.Minute, Wait: 30 * time.Second}
}

var _ Idempotency = (*RedisIdempotency)(nil)

const pendingPrefix = "pending:"

// releaseScript deletes the key only while it is still the holder's claim.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Claim implements Idempotency.
func (r *RedisIdempotency) Claim(ctx context.Context, key, holder string) (*Answer, error) {
	deadline := time.Now().Add(r.Wait)
	for {
		ok, err := r.rdb.SetNX(ctx, key, pendingPrefix+holder, r.Pending).Result()
		if err != nil {
			return nil, fmt.Errorf("idempotency claim: %w", err)
		}
		if ok {
			return nil, nil
		}
		v, err := r.rdb.Get(ctx, key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("idempotency read: %w", err)
		}
		if v != "" && !strings.HasPrefix(v, pendingPrefix) {
			var a Answer
			if err := json.Unmarshal([]byte(v), &a); err != nil {
				return nil, fmt.Errorf("idempotency answer: %w", err)
			}
			return &a, nil
		}
		if time.Now().After(deadline) {
			return nil, ErrIdempotencyBusy
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Complete implements Idempotency.
func (r *RedisIdempotency) Complete(ctx context.Context, key string, a Answer, window time.Duration) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return r.rdb.Set(ctx, key, b, window).Err()
}

// Release implements Idempotency.
func (r *RedisIdempotency) Release(ctx context.Context, key, holder string) error {
	return releaseScript.Run(ctx, r.rdb, []string{key}, pendingPrefix+holder).Err()
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
		return ErrInvalidBoundArgs.With(errors.New("no _bound field in a repeat"))
	}
	if fp := s.replay.Fingerprint; fp != "" && fp != s.fingerprint() {
		return ErrIdemConflict.With(errors.New("idempotency key reused with other content"))
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
