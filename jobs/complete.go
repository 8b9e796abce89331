package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// A submission without steps needs no status before its end: nothing in
// it can be half done but its record, which is written again whole. Its
// worker stores the record and then, in one round trip, indexes it,
// publishes its event (once) and writes its status completed, so readers
// go from the `queued` derived from the task (version 1) straight to
// `completed` (version 2). A run that finds the submission already ended
// changes nothing.

// completePlain is that round trip.
//
// KEYS[1] status hash, KEYS[2] event dedupe key, KEYS[3] events stream,
// KEYS[4..] the index keys Index.Add writes (all, the action's, ids, the
// cards, then the personal sets; none without an index)
// ARGV[1..4] as publishOnce (event JSON, stream length, dedupe TTL s,
// events channel); ARGV[5] status TTL (ms), ARGV[6] action, ARGV[7]
// files JSON, ARGV[8] step types JSON, ARGV[9] updated (ms), ARGV[10]
// status channel, ARGV[11] submission id, ARGV[12] index entry, ARGV[13]
// the submission's card
//
// It answers the submission's status, its event id and whether this run
// ended it ("1") or found it ended ("0").
var completePlain = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'completed' or st == 'failed' or st == 'rejected' then
  return {st, redis.call('HGET', KEYS[1], 'event') or '', '0'}
end
if #KEYS >= 7 then
  redis.call('ZADD', KEYS[4], 0, ARGV[12])
  redis.call('ZADD', KEYS[5], 0, ARGV[12])
  redis.call('HSET', KEYS[6], ARGV[11], ARGV[12])
  redis.call('HSET', KEYS[7], ARGV[11], ARGV[13])
  for i = 8, #KEYS do redis.call('SADD', KEYS[i], ARGV[11]) end
end
` + luaPublishEvent("KEYS[2]", "KEYS[3]") + `
if not st then redis.call('HSET', KEYS[1], 'v', 1) end
redis.call('HSET', KEYS[1], 'status', 'completed', 'action', ARGV[6], 'files', ARGV[7], 'steps', ARGV[8], 'event', id, 'updated', ARGV[9])
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[10], ARGV[11])
return {'completed', id, '1'}
`)

// CompletePlain ends a submission without steps (no declared ones, no
// sinks) whose record is stored: in one round trip it indexes it (index
// may be nil), publishes its event ev once and writes its status
// completed. It answers the submission's status, its event id and whether
// this call ended it (false: it had ended before, and nothing changed).
func (p *RedisPublisher) CompletePlain(ctx context.Context, sub *submission.Submission, ev submission.Event, status *StatusStore, index *Index) (state, event string, ended bool, err error) {
	files, types, err := encodeBasics(sub, nil)
	if err != nil {
		return "", "", false, err
	}
	ev.ID = ""
	body, err := json.Marshal(ev)
	if err != nil {
		return "", "", false, fmt.Errorf("jobs: encode event: %w", err)
	}
	keys := []string{submission.StatusKey(sub.ID), submission.EventKey(sub.ID), submission.EventsStream}
	entry, card := "", ""
	if index != nil {
		var ikeys []string
		ikeys, entry = index.addKeys(sub)
		keys = append(keys, ikeys...)
		card = index.card(sub)
	}
	res, err := completePlain.Run(ctx, p.rdb, keys,
		string(body), p.maxLen, int64(eventDedupeTTL/time.Second), submission.EventsChannel,
		StatusTTL.Milliseconds(), sub.Action, files, types, status.stamp(), submission.StatusChannel, sub.ID, entry, card,
	).StringSlice()
	if err != nil {
		return "", "", false, fmt.Errorf("jobs: complete %s: %w", sub.ID, err)
	}
	if len(res) != 3 {
		return "", "", false, fmt.Errorf("jobs: complete %s: unexpected answer %q", sub.ID, res)
	}
	return res[0], res[1], res[2] == "1", nil
}
