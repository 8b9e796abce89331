package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// CheckRedisDurability warns loudly when Redis may lose queued tasks:
// without appendonly a restart drops what was written since the last
// snapshot, and an eviction policy other than noeviction deletes tasks
// under memory pressure. Managed Redis may refuse CONFIG; that is said too.
func CheckRedisDurability(ctx context.Context, rdb *redis.Client, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	want := map[string]string{"appendonly": "yes", "maxmemory-policy": "noeviction"}
	for name, good := range want {
		got, err := rdb.ConfigGet(cctx, name).Result()
		if err != nil {
			log.Warn("could not check the Redis setting "+name+"; make sure it is "+good+" or queued submissions can be lost", "err", err)
			continue
		}
		if v := got[name]; !strings.EqualFold(v, good) {
			log.Warn(fmt.Sprintf("WARNING: Redis %s is %q, not %q: queued submissions can be LOST (on restart or under memory pressure). Set %s %s in redis.conf.", name, v, good, name, good),
				"setting", name, "value", v, "want", good)
		}
	}
}
