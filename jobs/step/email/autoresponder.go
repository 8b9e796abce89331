package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/internal/period"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// placeholderTo is a recipient like "{email}": the address the submitter
// gave in that field. The actions file allows it only for a field
// declared type: email.
var placeholderTo = regexp.MustCompile(`^\{([A-Za-z][A-Za-z0-9_-]{0,63})\}$`)

// SubmitterPlaceholder reports whether an email step's recipient names a
// field of the submission, and which.
func SubmitterPlaceholder(to string) (field string, ok bool) {
	m := placeholderTo.FindStringSubmatch(strings.TrimSpace(to))
	if m == nil {
		return "", false
	}
	return m[1], true
}

// submitters fills the recipients that name a field with the address the
// submission holds there: one bare address, or the step fails for good
// (the field is validated as an email address, so this means a record
// changed by hand).
func submitters(to []string, sub *submission.Submission) ([]string, error) {
	out := make([]string, 0, len(to))
	for _, t := range to {
		field, ok := SubmitterPlaceholder(t)
		if !ok {
			out = append(out, t)
			continue
		}
		v, _ := sub.Values[field].(string)
		addr, err := mail.ParseAddress(v)
		if v == "" || err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(v) {
			return nil, Permanent("to %s: the submission holds no single email address there", t)
		}
		out = append(out, addr.Address)
	}
	return out, nil
}

// RecipientLimiter counts the messages an autoresponder sends to one
// address. Allow admits the message of one submission (member) unless n
// others went to key within per; a retry of the same submission is
// admitted again without counting twice.
type RecipientLimiter interface {
	Allow(ctx context.Context, key, member string, n int, per time.Duration) (bool, error)
}

// RedisRecipients is the RecipientLimiter on Redis: a sorted set per
// recipient of the submissions mailed, scored by time (a sliding window).
type RedisRecipients struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// NewRedisRecipients builds the autoresponder's limiter on a Redis client.
func NewRedisRecipients(rdb redis.UniversalClient) *RedisRecipients {
	return &RedisRecipients{rdb: rdb, now: time.Now}
}

// allowRecipient: KEYS[1] the recipient's set; ARGV member, now (ms),
// window (ms), limit.
var allowRecipient = redis.NewScript(`
local now, win, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], win)
return 1
`)

// Allow implements RecipientLimiter.
func (r *RedisRecipients) Allow(ctx context.Context, key, member string, n int, per time.Duration) (bool, error) {
	ok, err := allowRecipient.Run(ctx, r.rdb, []string{key}, member, r.now().UnixMilli(), per.Milliseconds(), n).Int()
	if err != nil {
		return false, fmt.Errorf("jobs: autoresponder limit: %w", err)
	}
	return ok == 1, nil
}

// recipientLimit is an email step's limit: at most N messages per
// recipient per period, like "5/1h" ("5/h" is the same).
type recipientLimit struct {
	N   int
	Per time.Duration
}

func parseRecipientLimit(s string) (recipientLimit, error) {
	num, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 1 {
		return recipientLimit{}, fmt.Errorf("limit %q: want messages per recipient per period, like 5/1h", s)
	}
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per
	}
	d, err := period.Parse(per)
	if err != nil {
		return recipientLimit{}, fmt.Errorf("limit %q: want messages per recipient per period, like 5/1h", s)
	}
	return recipientLimit{N: n, Per: d}, nil
}

// limitRecipients admits the message to the submitter's addresses under
// the step's limit; over it the step is skipped, not failed.
func limitRecipients(ctx context.Context, limiter RecipientLimiter, lim recipientLimit, c emailConfig, to []string, sub *submission.Submission) error {
	if limiter == nil {
		return nil
	}
	raw, _ := c.recipients()
	for i, t := range raw {
		if _, ok := SubmitterPlaceholder(t); !ok || i >= len(to) {
			continue
		}
		sum := sha256.Sum256([]byte(strings.ToLower(to[i])))
		ok, err := limiter.Allow(ctx, submission.AutoresponderKey(hex.EncodeToString(sum[:])), sub.ID, lim.N, lim.Per)
		if err != nil {
			return err
		}
		if !ok {
			return Skip("the recipient already got %d messages in %s (limit %d/%s)", lim.N, period.Format(lim.Per), lim.N, period.Format(lim.Per))
		}
	}
	return nil
}

// skipError is a step that chose not to act; it is recorded skipped,
// with the message as its note, and never run again.
type skipError struct{ msg string }

func (e *skipError) Error() string { return e.msg }

// Skip makes a step's outcome skipped (done, nothing sent) with why.
func Skip(format string, args ...any) error { return &skipError{msg: fmt.Sprintf(format, args...)} }
