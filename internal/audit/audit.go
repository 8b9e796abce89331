// Package audit keeps the admin side's audit log: who exported, erased,
// redelivered, ran a bulk action or signed in, and when. It is a Redis
// stream that formq only appends to; entries older than the retention
// are trimmed as new ones arrive. Entries never hold a submission's
// values, nor its id: submissions are named by a keyed digest of their
// id, so an erased submission leaves nothing in the log that leads back
// to it, while an admin who knows an id finds every entry about it.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stream is the Redis stream of the audit log.
const Stream = "formq:audit"

// signInPrefix starts the keys that remember a person signed in lately,
// so the log has one sign-in per person and SignInEvery.
const signInPrefix = "formq:audit:signin:"

// SignInEvery is how often at most a person signed in by the proxy is
// logged signing in: the proxy sends who they are on every request.
const SignInEvery = 12 * time.Hour

// What was done, as entries name it.
const (
	SignIn        = "sign-in"
	SignOut       = "sign-out"
	Export        = "export"
	Erase         = "erase"
	ErasePersonal = "erase-personal"
	Redeliver     = "redeliver"
	Bulk          = "bulk"
	Bind          = "bind"
	SpamRelease   = "release-spam" // out of the Spam folder, its steps run
	SpamConfirm   = "confirm-spam"
	SpamMark      = "mark-spam" // taught the model: detail says spam or not spam
)

// Entry is one line of the audit log.
type Entry struct {
	// ID is the entry's stream id; entries sort by it, newest last.
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// Who did it: an email or user name, or "token" for the shared
	// admin token; Role and Via say as what and how they signed in.
	Who  string `json:"who"`
	Role string `json:"role"`
	Via  string `json:"via"`
	What string `json:"what"`
	// Action is the action the submissions belong to, when one.
	Action string `json:"action,omitempty"`
	// Submissions are the keyed digests of the ids of the submissions
	// concerned; Count is how many (rows exported, submissions erased).
	Submissions []string `json:"submissions,omitempty"`
	Count       int      `json:"count"`
	// Detail says more in words that name no one: the export's format,
	// the field of an erasure by personal value, the steps redelivered.
	Detail string `json:"detail,omitempty"`
}

// Digester is the deployment's keyed digest (jobs.Salt).
type Digester interface {
	Digest(ctx context.Context, value string) (string, error)
}

// Log is the audit log on Redis.
type Log struct {
	rdb    redis.UniversalClient
	keep   time.Duration
	digest Digester
	now    func() time.Time
}

// New builds the log; entries are kept for keep (0: forever).
func New(rdb redis.UniversalClient, keep time.Duration, d Digester) *Log {
	return &Log{rdb: rdb, keep: keep, digest: d, now: time.Now}
}

// SubmissionDigest is the name entries give a submission.
func (l *Log) SubmissionDigest(ctx context.Context, id string) (string, error) {
	d, err := l.digest.Digest(ctx, "audit-submission:"+id)
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	return d[:24], nil
}

// Append adds an entry about the submissions with these ids (named in
// the entry by their digests), trimming entries past the retention.
func (l *Log) Append(ctx context.Context, e Entry, ids ...string) error {
	for _, id := range ids {
		d, err := l.SubmissionDigest(ctx, id)
		if err != nil {
			return err
		}
		e.Submissions = append(e.Submissions, d)
	}
	e.ID, e.At = "", time.Time{}
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	args := &redis.XAddArgs{Stream: Stream, Values: []any{"entry", raw}}
	if l.keep > 0 {
		args.MinID, args.Approx = strconv.FormatInt(l.now().Add(-l.keep).UnixMilli(), 10), true
	}
	if err := l.rdb.XAdd(ctx, args).Err(); err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	return nil
}

// FirstSignIn says whether a person's sign-in should be logged: true at
// most once per SignInEvery for the same person and way of signing in.
func (l *Log) FirstSignIn(ctx context.Context, who, via string) (bool, error) {
	d, err := l.digest.Digest(ctx, "audit-signin:"+via+":"+strings.ToLower(who))
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	first, err := l.rdb.SetNX(ctx, signInPrefix+d[:24], 1, SignInEvery).Result()
	if err != nil {
		return false, fmt.Errorf("audit: sign-in: %w", err)
	}
	return first, nil
}

// Query selects entries: those before a cursor (an entry id), at most
// Limit, only those about one submission when Submission is set.
type Query struct {
	Before     string
	Limit      int
	Submission string // a submission id
}

// ErrBadCursor answers a cursor that is no entry id.
var ErrBadCursor = errors.New("audit: bad cursor")

// maxScan bounds the entries one page looks at when it filters by
// submission; past it the page ends early with a cursor to go on.
const maxScan = 20_000

// List answers entries newest first and the cursor of the next page
// (empty at the end).
func (l *Log) List(ctx context.Context, q Query) ([]Entry, string, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	end := "+"
	if q.Before != "" {
		if !validID(q.Before) {
			return nil, "", ErrBadCursor
		}
		end = "(" + q.Before
	}
	want := ""
	if q.Submission != "" {
		d, err := l.SubmissionDigest(ctx, q.Submission)
		if err != nil {
			return nil, "", err
		}
		want = d
	}
	out := []Entry{}
	for scanned := 0; scanned < maxScan; {
		batch, err := l.rdb.XRevRangeN(ctx, Stream, end, "-", 200).Result()
		if err != nil {
			return nil, "", fmt.Errorf("audit: read: %w", err)
		}
		for _, m := range batch {
			scanned++
			end = "(" + m.ID
			e, err := decode(m)
			if err != nil {
				return nil, "", err
			}
			if want == "" || slices.Contains(e.Submissions, want) {
				out = append(out, e)
			}
			if len(out) == q.Limit {
				return out, m.ID, nil
			}
		}
		if len(batch) < 200 {
			return out, "", nil
		}
	}
	return out, strings.TrimPrefix(end, "("), nil
}

func decode(m redis.XMessage) (Entry, error) {
	var e Entry
	raw, _ := m.Values["entry"].(string)
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return e, fmt.Errorf("audit: entry %s: %w", m.ID, err)
	}
	e.ID = m.ID
	if ms, _, ok := strings.Cut(m.ID, "-"); ok {
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			e.At = time.UnixMilli(n).UTC()
		}
	}
	return e, nil
}

func validID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}
