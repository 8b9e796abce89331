package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// Salt is the deployment's secret key for the digests formq keeps of
// personal values in Redis key names (autoresponder recipients, rate
// limited clients): every API and worker process reads the same random
// key, made once by whichever process needs it first. A digest keyed
// with it cannot be reversed with a dictionary of addresses or the IPv4
// space by anyone who reads the key names alone (a log, a dashboard, a
// Redis dump without this key).
type Salt struct {
	rdb redis.UniversalClient
	mu  sync.Mutex
	key []byte
}

// NewSalt builds the salt on a Redis client; the key is read at first use.
func NewSalt(rdb redis.UniversalClient) *Salt { return &Salt{rdb: rdb} }

// Digest answers the keyed digest of a value, in hex.
func (s *Salt) Digest(ctx context.Context, value string) (string, error) {
	key, err := s.load(ctx)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:20]), nil
}

func (s *Salt) load(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	if err := s.rdb.SetNX(ctx, submission.SaltKey, hex.EncodeToString(fresh), 0).Err(); err != nil {
		return nil, fmt.Errorf("jobs: make the digest key: %w", err)
	}
	v, err := s.rdb.Get(ctx, submission.SaltKey).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: read the digest key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("jobs: the digest key %s is not what formq wrote", submission.SaltKey)
	}
	s.key = key
	return key, nil
}

// RecipientKey is the autoresponder's limit key of an address: the keyed
// digest of the mailbox as submission.NormalizeAddress spells it.
func RecipientKey(ctx context.Context, salt *Salt, address string) (string, error) {
	d, err := salt.Digest(ctx, submission.NormalizeAddress(address))
	if err != nil {
		return "", err
	}
	return submission.AutoresponderKey(d), nil
}

// RecipientDomainKey is the key of the autoresponders' cap on one
// recipient domain: the keyed digest of the domain as
// submission.NormalizeAddress spells it.
func RecipientDomainKey(ctx context.Context, salt *Salt, address string) (string, error) {
	d, err := salt.Digest(ctx, "domain:"+submission.AddressDomain(address))
	if err != nil {
		return "", err
	}
	return submission.AutoresponderDomainKey(d), nil
}
