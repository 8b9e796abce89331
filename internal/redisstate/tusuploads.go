package redisstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// TusUploads counts each client's unfinished resumable uploads in Redis,
// across every API process, so that one client cannot open uploads
// without end: each holds an S3 multipart upload and tusd's objects until
// it expires. A client's uploads are a sorted set by expiry
// (submission.TusUploadsKey, under a keyed digest of the address); each
// upload names its client's digest (submission.TusOwnerKey) so that
// whichever request finishes or cancels it, from whatever address, counts
// it out.
type TusUploads struct {
	rdb  redis.UniversalClient
	salt *jobs.Salt
}

// NewTusUploads builds the counts on a Redis client.
func NewTusUploads(rdb redis.UniversalClient) *TusUploads {
	return &TusUploads{rdb: rdb, salt: jobs.NewSalt(rdb)}
}

// beginTusUpload counts upload ARGV[3] of a client (KEYS[1], its owner
// key KEYS[2]) until it expires (ARGV[4], Unix ms) unless the client has
// ARGV[2] unfinished ones already; expired ones (before ARGV[1]) are
// dropped first.
var beginTusUpload = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[5], 'PXAT', ARGV[4])
return 1`)

// Begin counts a new unfinished upload (its object id) of client, which
// may be resumed until expires, unless the client has max unfinished
// uploads already: then ok is false and nothing is counted.
func (u *TusUploads) Begin(ctx context.Context, client, upload string, max int, expires time.Time) (ok bool, err error) {
	digest, err := u.salt.Digest(ctx, client)
	if err != nil {
		return false, fmt.Errorf("tus uploads: %w", err)
	}
	n, err := beginTusUpload.Run(ctx, u.rdb, []string{submission.TusUploadsKey(digest), submission.TusOwnerKey(upload)},
		time.Now().UnixMilli(), max, upload, expires.UnixMilli(), digest).Int()
	if err != nil {
		return false, fmt.Errorf("tus uploads: %w", err)
	}
	return n == 1, nil
}

// End stops counting an upload: it was finished or cancelled.
func (u *TusUploads) End(ctx context.Context, upload string) error {
	owner := submission.TusOwnerKey(upload)
	digest, err := u.rdb.Get(ctx, owner).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil // expired, or counted out already
	case err != nil:
		return fmt.Errorf("tus uploads: %w", err)
	}
	_, err = u.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, submission.TusUploadsKey(digest), upload)
		p.Del(ctx, owner)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tus uploads: %w", err)
	}
	return nil
}
