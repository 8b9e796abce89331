package jobs

// The Spam folder and the spam model in Redis (see submission/spam.go):
// what the API's spam check counts and asks, what the worker writes when
// it holds a submission, and what an admin's release, confirmation or
// mark changes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/formq/formq/actions/spam"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// SpamStore keeps what the spam check remembers: recent posts (duplicate
// bodies, clients' rates) and the model's counts. It is the API's
// spam.Memory and spam.Model.
type SpamStore struct {
	rdb  redis.UniversalClient
	salt *Salt
}

var (
	_ spam.Memory = (*SpamStore)(nil)
	_ spam.Model  = (*SpamStore)(nil)
)

// NewSpamStore builds the spam store on Redis.
func NewSpamStore(rdb redis.UniversalClient) *SpamStore {
	return &SpamStore{rdb: rdb, salt: NewSalt(rdb)}
}

// countSeen counts one more post under KEYS[1], which lives ARGV[1] ms
// from the first.
var countSeen = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`)

// Seen counts a post of an action with this kind and value within
// window; the key holds a keyed digest of the value, not the value.
func (s *SpamStore) Seen(ctx context.Context, action, kind, value string, window time.Duration) (int64, error) {
	digest, err := s.salt.Digest(ctx, kind+"\x00"+value)
	if err != nil {
		return 0, err
	}
	n, err := countSeen.Run(ctx, s.rdb, []string{submission.SpamSeenKey(action, digest)}, window.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("jobs: count recent posts: %w", err)
	}
	return n, nil
}

// Counts reads the model's counts of tokens in one round trip.
func (s *SpamStore) Counts(ctx context.Context, tokens []string) (spam.Counts, error) {
	fields := make([]string, 0, 2+2*len(tokens))
	fields = append(fields, "docs:s", "docs:h")
	for _, t := range tokens {
		fields = append(fields, "s:"+t, "h:"+t)
	}
	vals, err := s.rdb.HMGet(ctx, submission.SpamModel, fields...).Result()
	if err != nil {
		return spam.Counts{}, fmt.Errorf("jobs: read the spam model: %w", err)
	}
	num := func(v any) int64 {
		str, _ := v.(string)
		var n int64
		_, _ = fmt.Sscan(str, &n)
		return max(n, 0)
	}
	c := spam.Counts{SpamDocs: num(vals[0]), HamDocs: num(vals[1]), Spam: make([]int64, len(tokens)), Ham: make([]int64, len(tokens))}
	for i := range tokens {
		c.Spam[i], c.Ham[i] = num(vals[2+2*i]), num(vals[3+2*i])
	}
	return c, nil
}

// learn gives submission ARGV[2] the label ARGV[1] ("s" or "h") in the
// model, its tokens in ARGV[3:]: the counts of its old label, if any,
// down, of the new one up. Learning the same label again changes nothing.
var learn = redis.NewScript(`
local old = redis.call('HGET', KEYS[2], ARGV[2])
if old == ARGV[1] then return 0 end
if old then
  redis.call('HINCRBY', KEYS[1], 'docs:' .. old, -1)
  for i = 3, #ARGV do
    if redis.call('HINCRBY', KEYS[1], old .. ':' .. ARGV[i], -1) <= 0 then redis.call('HDEL', KEYS[1], old .. ':' .. ARGV[i]) end
  end
end
redis.call('HINCRBY', KEYS[1], 'docs:' .. ARGV[1], 1)
for i = 3, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[1] .. ':' .. ARGV[i], 1) end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
`)

// Learn teaches the model that a submission with these values is spam
// or not. A submission counts once: learning it again with the other
// label moves it.
func (x *Index) Learn(ctx context.Context, id string, values map[string]any, isSpam bool) error {
	label := "h"
	if isSpam {
		label = "s"
	}
	args := []any{label, id}
	for _, t := range spam.Tokens(spam.Text(values)) {
		args = append(args, t)
	}
	if err := learn.Run(ctx, x.rdb, []string{submission.SpamModel, submission.SpamLabels}, args...).Err(); err != nil {
		return fmt.Errorf("jobs: teach the spam model: %w", err)
	}
	return nil
}

// holdSpam puts an indexed submission in the Spam folder with its
// verdict, unless an admin already decided about it (a retried task of a
// released submission must not hold it again).
var holdSpam = redis.NewScript(`
local v = redis.call('HGET', KEYS[2], ARGV[1])
if v and not string.find(v, '"verdict":"spam"', 1, true) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], 0, ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
return 1
`)

// Hold puts a stored submission in the Spam folder instead of the
// inbox: it can be read, erased and released like any indexed one. It
// answers false when an admin already released or confirmed it.
func (x *Index) Hold(ctx context.Context, sub *submission.Submission) (bool, error) {
	verdict, err := json.Marshal(sub.Spam)
	if err != nil {
		return false, fmt.Errorf("jobs: encode the verdict of %s: %w", sub.ID, err)
	}
	keys, entry := x.addKeys(sub)
	n, err := holdSpam.Run(ctx, x.rdb, []string{submission.SpamFolder, submission.SpamVerdicts, keys[2], keys[3]},
		sub.ID, entry, verdict, x.card(sub)).Int()
	if err != nil {
		return false, fmt.Errorf("jobs: hold %s as spam: %w", sub.ID, err)
	}
	if n == 1 && len(keys) > 4 {
		// Personal sets: a held submission is erased by a person's
		// request like any other.
		if _, err := x.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys[4:] {
				p.SAdd(ctx, k, sub.ID)
			}
			return nil
		}); err != nil {
			return false, fmt.Errorf("jobs: index %s: %w", sub.ID, err)
		}
	}
	return n == 1, nil
}

// Verdict reads a submission's spam verdict; nil when it has none.
func (x *Index) Verdict(ctx context.Context, id string) (*submission.Spam, error) {
	raw, err := x.rdb.HGet(ctx, submission.SpamVerdicts, id).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: read the verdict of %s: %w", id, err)
	}
	var v submission.Spam
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, fmt.Errorf("jobs: decode the verdict of %s: %w", id, err)
	}
	return &v, nil
}

// NoteVerdict keeps the verdict of a submission that passed the check,
// so the inbox shows its score and reasons too.
func (x *Index) NoteVerdict(ctx context.Context, sub *submission.Submission) error {
	if sub.Spam == nil {
		return nil
	}
	b, err := json.Marshal(sub.Spam)
	if err != nil {
		return fmt.Errorf("jobs: encode the verdict of %s: %w", sub.ID, err)
	}
	if err := x.rdb.HSetNX(ctx, submission.SpamVerdicts, sub.ID, b).Err(); err != nil {
		return fmt.Errorf("jobs: keep the verdict of %s: %w", sub.ID, err)
	}
	return nil
}

// decide changes a held submission's verdict (ARGV[2], JSON) when its
// stored verdict is still "spam": released moves its entry (ARGV[3]) from
// the Spam folder to the inbox and its status to queued; confirmed keeps
// it in the folder. Anything else answers the verdict as it is.
var decide = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 'none' end
if not string.find(v, '"verdict":"spam"', 1, true) then return v end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] == 'released' then
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[3], 0, ARGV[3])
  redis.call('ZADD', KEYS[4], 0, ARGV[3])
  redis.call('HSET', KEYS[5], 'status', 'queued', 'updated', ARGV[5])
  redis.call('HINCRBY', KEYS[5], 'v', 1)
  redis.call('PUBLISH', ARGV[6], ARGV[1])
end
return 'ok'
`)

// Decide changes the verdict of a held submission to released or
// confirmed, once: a second decision (or one about a submission never
// held) is submission.ErrNotHeld. A release moves it to the inbox, queued; the
// caller then queues its steps.
func (x *Index) Decide(ctx context.Context, id, verdict string, now time.Time) (*submission.Spam, error) {
	entry, err := x.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	_, action, _, _ := submission.ParseIndexEntry(entry)
	v, err := x.Verdict(ctx, id)
	if err != nil {
		return nil, err
	}
	if v == nil || v.Verdict != submission.SpamHeld {
		return nil, submission.ErrNotHeld
	}
	v.Verdict, v.At = verdict, now.UTC()
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	res, err := decide.Run(ctx, x.rdb, []string{submission.SpamVerdicts, submission.SpamFolder, submission.IndexAll, submission.IndexActionKey(action), submission.StatusKey(id)},
		id, b, entry, verdict, now.UnixMilli(), submission.StatusChannel).Text()
	if err != nil {
		return nil, fmt.Errorf("jobs: decide about %s: %w", id, err)
	}
	if res != "ok" {
		return nil, submission.ErrNotHeld
	}
	return v, nil
}

// Unrelease puts a released submission back in the Spam folder when its
// steps could not be queued, so the release can be tried again.
func (x *Index) Unrelease(ctx context.Context, id string, v *submission.Spam) error {
	entry, err := x.Lookup(ctx, id)
	if err != nil {
		return err
	}
	_, action, _, _ := submission.ParseIndexEntry(entry)
	held := *v
	held.Verdict, held.At = submission.SpamHeld, time.Time{}
	b, _ := json.Marshal(held)
	_, err = x.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, submission.SpamVerdicts, id, b)
		p.ZRem(ctx, submission.IndexAll, entry)
		p.ZRem(ctx, submission.IndexActionKey(action), entry)
		p.ZAdd(ctx, submission.SpamFolder, redis.Z{Member: entry})
		p.HSet(ctx, submission.StatusKey(id), "status", submission.StatusSpam)
		return nil
	})
	return err
}

// ReleaseTask is the task that runs a released submission's steps: its
// record with the released verdict, under a task id of its own
// (submission.ReleaseTaskID), so it is queued once.
func ReleaseTask(ctx context.Context, sub *submission.Submission) (*asynq.Task, error) {
	t, err := NewSubmissionTask(ctx, sub)
	if err != nil {
		return nil, err
	}
	queue := sub.Queue
	if queue == "" {
		queue = submission.DefaultQueue
	}
	return asynq.NewTaskWithHeaders(t.Type(), t.Payload(), t.Headers(),
		asynq.TaskID(submission.ReleaseTaskID(sub.ID)), asynq.Queue(queue), asynq.MaxRetry(MaxRetry),
		asynq.Retention(Retention), asynq.Timeout(Timeout)), nil
}

// SpamExpired answers up to n entries of the Spam folder received before
// cutoff, oldest first.
func (x *Index) SpamExpired(ctx context.Context, cutoff time.Time, n int) ([]string, error) {
	entries, err := x.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: submission.SpamFolder, Start: "-", Stop: "(" + submission.IndexBound(cutoff), ByLex: true, Count: int64(n)}).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: read the Spam folder: %w", err)
	}
	return entries, nil
}

// forgetLabel takes a submission's label (if the model learnt one) back
// out of the model's counts, the tokens in ARGV[2:].
var forgetLabel = redis.NewScript(`
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return 0 end
redis.call('HINCRBY', KEYS[1], 'docs:' .. old, -1)
for i = 2, #ARGV do
  if redis.call('HINCRBY', KEYS[1], old .. ':' .. ARGV[i], -1) <= 0 then redis.call('HDEL', KEYS[1], old .. ':' .. ARGV[i]) end
end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`)

// forget takes an erased submission out of the model: what it taught is
// unlearnt, so no word of it stays behind.
func (x *Index) forget(ctx context.Context, sub *submission.Submission) error {
	args := []any{sub.ID}
	for _, t := range spam.Tokens(spam.Text(sub.Values)) {
		args = append(args, t)
	}
	if err := forgetLabel.Run(ctx, x.rdb, []string{submission.SpamModel, submission.SpamLabels}, args...).Err(); err != nil {
		return fmt.Errorf("jobs: take %s out of the spam model: %w", sub.ID, err)
	}
	return nil
}

// SpamCount answers how many submissions the Spam folder holds.
func (x *Index) SpamCount(ctx context.Context) (int64, error) {
	n, err := x.rdb.ZCard(ctx, submission.SpamFolder).Result()
	if err != nil {
		return 0, fmt.Errorf("jobs: count the Spam folder: %w", err)
	}
	return n, nil
}

// Releaser queues the steps of released submissions; it is the API's
// admin.Releaser.
type Releaser struct{ client *asynq.Client }

// NewReleaser builds a Releaser on the API's asynq client.
func NewReleaser(c *asynq.Client) *Releaser { return &Releaser{client: c} }

// Release queues a released submission (its verdict released) to run its
// steps. Its task id is the submission's release id, so a second release
// queues nothing.
func (r *Releaser) Release(ctx context.Context, sub *submission.Submission) error {
	t, err := ReleaseTask(ctx, sub)
	if err != nil {
		return err
	}
	if _, err := r.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("jobs: queue the release of %s: %w", sub.ID, err)
	}
	return nil
}

// DropSpam removes an entry left in the Spam folder by an interrupted
// erasure.
func (x *Index) DropSpam(ctx context.Context, entry string) error {
	if err := x.rdb.ZRem(ctx, submission.SpamFolder, entry).Err(); err != nil {
		return fmt.Errorf("jobs: drop a Spam folder entry: %w", err)
	}
	return nil
}
