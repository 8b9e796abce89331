// Package redisstate keeps the API's short-lived state in Redis, shared by
// every API process: idempotency keys, claims on upload references, rate
// limits and accepted captcha answers. Each type implements a small
// interface declared where it is used (actions/submit, actions/web,
// actions/captcha).
package redisstate

import "github.com/redis/go-redis/v9"

// releaseScript deletes the key only while it is still the holder's claim.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
