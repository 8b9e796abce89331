package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// eventDedupeTTL is how long a submission's event id is kept to publish
// it once.
const eventDedupeTTL = 7 * 24 * time.Hour

// Publisher sends revalidation events; *RedisPublisher is the one formq
// uses.
type Publisher interface {
	Publish(ctx context.Context, ev submission.Event) (string, error)
}

// RedisPublisher appends events to the capped stream formq:events and
// publishes them on formq:revalidate, once per submission.
type RedisPublisher struct {
	rdb    redis.UniversalClient
	maxLen int64
}

// NewRedisPublisher builds a publisher keeping about maxLen events.
func NewRedisPublisher(rdb redis.UniversalClient, maxLen int64) *RedisPublisher {
	return &RedisPublisher{rdb: rdb, maxLen: maxLen}
}

var _ Publisher = (*RedisPublisher)(nil)

// publishOnce appends and publishes an event unless the submission already
// has one, atomically, so retries and crashed workers never publish twice.
// The stream entry's id is the event id; the published message carries it
// spliced in as its first member.
var publishOnce = redis.NewScript(luaPublishEvent("KEYS[1]", "KEYS[2]") + "return id\n")

// luaPublishEvent is the Lua of publishOnce, for the scripts that publish
// a submission's event along with other writes: dedupe and stream are the
// Lua expressions of the event's dedupe key and the events stream;
// ARGV[1..4] are the event JSON, the stream's length, the dedupe TTL (s)
// and the events channel. It leaves the event id in the local id.
func luaPublishEvent(dedupe, stream string) string {
	return `local id = redis.call('GET', ` + dedupe + `)
if not id then
  id = redis.call('XADD', ` + stream + `, 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[1])
  redis.call('SET', ` + dedupe + `, id, 'EX', ARGV[3])
  redis.call('PUBLISH', ARGV[4], '{"id":"' .. id .. '",' .. string.sub(ARGV[1], 2))
end
`
}

// Publish records the event of a submission and returns its stream id; a
// second call for the same submission returns the first id and does
// nothing else.
func (p *RedisPublisher) Publish(ctx context.Context, ev submission.Event) (string, error) {
	ev.ID = ""
	body, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("jobs: encode event: %w", err)
	}
	id, err := publishOnce.Run(ctx, p.rdb,
		[]string{submission.EventKey(ev.Submission), submission.EventsStream},
		string(body), p.maxLen, int64(eventDedupeTTL/time.Second), submission.EventsChannel,
	).Text()
	if err != nil {
		return "", fmt.Errorf("jobs: publish event of %s: %w", ev.Submission, err)
	}
	return id, nil
}

// completeOnce is publishOnce and then the submission's completed status
// (as StatusStore.finish writes it), in one round trip: the end of a
// submission without steps after its event.
//
// KEYS[1] event dedupe key, KEYS[2] events stream, KEYS[3] status hash
// ARGV[1..4] as publishOnce; ARGV[5] updated (ms), ARGV[6] status TTL
// (ms), ARGV[7] status channel, ARGV[8] submission id
var completeOnce = redis.NewScript(luaPublishEvent("KEYS[1]", "KEYS[2]") + `
redis.call('HSET', KEYS[3], 'status', 'completed', 'event', id, 'updated', ARGV[5])
redis.call('HINCRBY', KEYS[3], 'v', 1)
redis.call('PEXPIRE', KEYS[3], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[8])
return id
`)

// PublishCompleted publishes the event of a submission, once, and marks
// the submission completed with it, atomically; it answers the event id.
func (p *RedisPublisher) PublishCompleted(ctx context.Context, ev submission.Event, status *StatusStore) (string, error) {
	ev.ID = ""
	body, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("jobs: encode event: %w", err)
	}
	args := append([]any{string(body), p.maxLen, int64(eventDedupeTTL / time.Second), submission.EventsChannel},
		status.completedArgs(ev.Submission)...)
	id, err := completeOnce.Run(ctx, p.rdb,
		[]string{submission.EventKey(ev.Submission), submission.EventsStream, submission.StatusKey(ev.Submission)}, args...,
	).Text()
	if err != nil {
		return "", fmt.Errorf("jobs: publish event of %s: %w", ev.Submission, err)
	}
	return id, nil
}
