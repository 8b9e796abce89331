package teststack

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/formq/formq/uploads"
	"github.com/redis/go-redis/v9"
)

// Traces is every place in Redis and S3 that names one of needles (a
// submission id, an address, a client IP): a key or object name, or a
// value (string, hash field or value, set, sorted set and list member,
// stream entry) or object body holding it. An erasure test wants none.
func Traces(t *testing.T, rdb *redis.Client, store *uploads.Store, needles ...string) []string {
	t.Helper()
	ctx := context.Background()
	var found []string
	look := func(where, s string) {
		for _, n := range needles {
			if strings.Contains(s, n) {
				found = append(found, fmt.Sprintf("%s holds %q", where, n))
			}
		}
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		look("the name of Redis key "+k, k)
		var vals []string
		switch rdb.Type(ctx, k).Val() {
		case "string":
			vals = []string{rdb.Get(ctx, k).Val()}
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "zset":
			vals = rdb.ZRange(ctx, k, 0, -1).Val()
		case "set":
			vals = rdb.SMembers(ctx, k).Val()
		case "list":
			vals = rdb.LRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					vals = append(vals, f, fmt.Sprint(v))
				}
			}
		}
		for _, v := range vals {
			look("Redis key "+k, v)
		}
	}
	objects, err := store.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range objects {
		look("the name of S3 object "+k, k)
		b, err := store.Get(ctx, k)
		if err != nil {
			continue // gone since the listing
		}
		look("S3 object "+k, string(b))
	}
	return found
}
