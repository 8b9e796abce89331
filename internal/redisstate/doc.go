// Package redisstate keeps the API's short-lived state in Redis, shared by
// every API process: idempotency keys, claims on upload references, rate
// limits and accepted captcha answers. Each type implements a small
// interface declared where it is used (actions/submit, actions/web,
// actions/captcha).
package redisstate

import "github.com/redis/go-redis/v9"

// releaseScript deletes the key only while it is still the holder's
// claim: its value is one of ARGV (the forms a holder's claim takes).
var releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
for _, claim in ipairs(ARGV) do
  if v == claim then return redis.call('DEL', KEYS[1]) end
end
return 0`)
