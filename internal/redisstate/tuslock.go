package redisstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
	tusd "github.com/tus/tusd/v2/pkg/handler"
)

// TusLocker is tusd's upload lock in Redis, so that two API processes
// never write one resumable upload at once: a PATCH resumed on another
// replica while the first still runs asks the holder to stop (tusd
// then saves what it received and answers), takes the lock, and finds
// the offset moved (409) instead of splicing its bytes into the other's.
// A lock is a key with a random token that its holder renews while it
// runs, so a crashed process frees it within tusLockTTL.
type TusLocker struct {
	rdb redis.UniversalClient
}

// tusLockTTL is how long a lock outlives a holder that stops renewing
// it; tusLockPoll is how often a waiter tries again.
const (
	tusLockTTL  = 15 * time.Second
	tusLockPoll = 50 * time.Millisecond
)

// NewTusLocker builds the locker on a Redis client.
func NewTusLocker(rdb redis.UniversalClient) *TusLocker { return &TusLocker{rdb: rdb} }

// UseIn makes a tusd composer lock uploads with l.
func (l *TusLocker) UseIn(c *tusd.StoreComposer) { c.UseLocker(l) }

// NewLock implements tusd.Locker.
func (l *TusLocker) NewLock(id string) (tusd.Lock, error) {
	return &tusLock{l: l, key: submission.TusLockKey(id), channel: submission.TusLockKey(id) + ":release"}, nil
}

type tusLock struct {
	l            *TusLocker
	key, channel string
	token        string
	stop         context.CancelFunc
	done         sync.WaitGroup
}

// unlockIfOwned and renewIfOwned act on the key only while it holds the
// holder's token.
var (
	unlockIfOwned = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
	renewIfOwned  = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`)
)

// Lock takes the lock, asking its holder to release it and waiting
// until ctx ends (tusd.ErrLockTimeout).
func (k *tusLock) Lock(ctx context.Context, requestRelease func()) error {
	b := make([]byte, 16)
	rand.Read(b)
	k.token = hex.EncodeToString(b)
	var asked time.Time
	for {
		ok, err := k.l.rdb.SetNX(ctx, k.key, k.token, tusLockTTL).Result()
		switch {
		case err != nil && ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded):
			return tusd.ErrLockTimeout
		case err != nil:
			return fmt.Errorf("tus lock: %w", err)
		case ok:
			k.hold(requestRelease)
			return nil
		}
		// Ask the holder to stop, again now and then: it may not have
		// been listening yet.
		if time.Since(asked) > 10*tusLockPoll {
			k.l.rdb.Publish(ctx, k.channel, "release")
			asked = time.Now()
		}
		select {
		case <-ctx.Done():
			return tusd.ErrLockTimeout
		case <-time.After(tusLockPoll):
		}
	}
}

// hold renews the lock while it is held and calls requestRelease when
// another process asks for it.
func (k *tusLock) hold(requestRelease func()) {
	ctx, cancel := context.WithCancel(context.Background())
	k.stop = cancel
	sub := k.l.rdb.Subscribe(ctx, k.channel)
	k.done.Go(func() {
		defer sub.Close()
		renew := time.NewTicker(tusLockTTL / 3)
		defer renew.Stop()
		msgs := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case <-renew.C:
				renewIfOwned.Run(ctx, k.l.rdb, []string{k.key}, k.token, tusLockTTL.Milliseconds())
			case _, ok := <-msgs:
				if !ok {
					return
				}
				requestRelease()
			}
		}
	})
}

// Unlock releases the lock if this holder still has it.
func (k *tusLock) Unlock() error {
	if k.stop != nil {
		k.stop()
		k.done.Wait()
	}
	if err := unlockIfOwned.Run(context.Background(), k.l.rdb, []string{k.key}, k.token).Err(); err != nil {
		return fmt.Errorf("tus unlock: %w", err)
	}
	return nil
}
