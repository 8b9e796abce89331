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
var publishOnce = redis.NewScript(`
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[1])
redis.call('SET', KEYS[1], id, 'EX', ARGV[3])
redis.call('PUBLISH', ARGV[4], '{"id":"' .. id .. '",' .. string.sub(ARGV[1], 2))
return id
`)

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
