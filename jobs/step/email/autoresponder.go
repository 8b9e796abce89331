package email

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/formq/formq/internal/period"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// submitters fills the recipients that name a field with the address the
// submission holds there: one bare address, or the step fails for good
// (the field is validated as an email address, so this means a record
// changed by hand).
func submitters(to []string, sub *submission.Submission) ([]string, error) {
	out := make([]string, 0, len(to))
	for _, t := range to {
		field, ok := builtin.SubmitterPlaceholder(t)
		if !ok {
			out = append(out, t)
			continue
		}
		v, _ := sub.Values[field].(string)
		addr, err := mail.ParseAddress(v)
		if v == "" || err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(v) {
			return nil, step.Permanent("to %s: the submission holds no single email address there", t)
		}
		out = append(out, addr.Address)
	}
	return out, nil
}

// RecipientLimiter counts the messages an autoresponder sends to one
// address. Allow admits the message of one submission (member) unless n
// others went to the address within per; a retry of the same submission
// is admitted again without counting twice.
type RecipientLimiter interface {
	Allow(ctx context.Context, address, member string, n int, per time.Duration) (bool, error)
}

// RedisRecipients is the RecipientLimiter on Redis: a sorted set per
// mailbox (the address as submission.NormalizeAddress spells it, under a
// keyed digest: jobs.Salt) of the submissions mailed, scored by time (a
// sliding window). Erasing a submission removes it from the set
// (jobs.Index.Erase).
//
// Besides each step's limit per mailbox, every autoresponder of the
// deployment shares one cap per recipient domain (DomainLimit), so
// spellings the normalisation does not know, or many mailboxes of one
// small domain, cannot turn the forms into a spam source for it.
type RedisRecipients struct {
	rdb  redis.UniversalClient
	salt *jobs.Salt
	now  func() time.Time
	// DomainLimit caps the messages to one recipient domain within
	// DomainPer, over every autoresponder.
	DomainLimit int
	DomainPer   time.Duration
}

// Default cap of autoresponder messages to one recipient domain.
const (
	DefaultDomainLimit = 300
	DefaultDomainPer   = time.Hour
)

// NewRedisRecipients builds the autoresponder's limiter on a Redis client.
func NewRedisRecipients(rdb redis.UniversalClient) *RedisRecipients {
	return &RedisRecipients{rdb: rdb, salt: jobs.NewSalt(rdb), now: time.Now, DomainLimit: DefaultDomainLimit, DomainPer: DefaultDomainPer}
}

// allowRecipient: KEYS[1] the recipient's set, KEYS[2] its domain's;
// ARGV member, now (ms), window (ms), limit, the domain's window (ms)
// and limit. It answers 1 (allowed), 0 (over the recipient's limit) or
// 2 (over the domain's).
var allowRecipient = redis.NewScript(`
local now, win, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local dwin, dmax = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - dwin)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= max then return 0 end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) and redis.call('ZCARD', KEYS[2]) >= dmax then return 2 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], win)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], dwin)
return 1
`)

// ErrDomainLimit is why an autoresponder message was not sent when its
// recipient's domain had all the messages DomainLimit allows.
var ErrDomainLimit = errors.New("the recipient's domain got all the autoresponder messages allowed")

// Allow implements RecipientLimiter.
func (r *RedisRecipients) Allow(ctx context.Context, address, member string, n int, per time.Duration) (bool, error) {
	key, err := jobs.RecipientKey(ctx, r.salt, address)
	if err != nil {
		return false, err
	}
	dkey, err := jobs.RecipientDomainKey(ctx, r.salt, address)
	if err != nil {
		return false, err
	}
	ok, err := allowRecipient.Run(ctx, r.rdb, []string{key, dkey}, member, r.now().UnixMilli(), per.Milliseconds(), n,
		r.DomainPer.Milliseconds(), r.DomainLimit).Int()
	switch {
	case err != nil:
		return false, fmt.Errorf("jobs: autoresponder limit: %w", err)
	case ok == 2:
		return false, fmt.Errorf("%w (%d in %s)", ErrDomainLimit, r.DomainLimit, period.Format(r.DomainPer))
	}
	return ok == 1, nil
}

// limitRecipients admits the message to the submitter's addresses under
// the step's limit; over it the step is skipped, not failed.
func limitRecipients(ctx context.Context, limiter RecipientLimiter, lim builtin.RecipientLimit, c builtin.EmailSettings, to []string, sub *submission.Submission) error {
	if limiter == nil {
		return nil
	}
	raw, _ := c.Recipients()
	for i, t := range raw {
		if _, ok := builtin.SubmitterPlaceholder(t); !ok || i >= len(to) {
			continue
		}
		ok, err := limiter.Allow(ctx, to[i], sub.ID, lim.N, lim.Per)
		if errors.Is(err, ErrDomainLimit) {
			return step.Skip("%v", err)
		}
		if err != nil {
			return err
		}
		if !ok {
			return step.Skip("the recipient already got %d messages in %s (limit %d/%s)", lim.N, period.Format(lim.Per), lim.N, period.Format(lim.Per))
		}
	}
	return nil
}
