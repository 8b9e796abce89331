package engine

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/formq/formq/internal/testenv"
)

func TestWorkerWarnsWhenRedisCanLoseTasks(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	check := func() string {
		var buf bytes.Buffer
		CheckRedisDurability(ctx, rdb, slog.New(slog.NewTextHandler(&buf, nil)))
		return buf.String()
	}
	if out := check(); out != "" {
		t.Fatalf("warned about a durable Redis: %s", out)
	}
	// The test Redis is shared by this binary's tests: restore it.
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	defer rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction")
	out := check()
	if !strings.Contains(out, "WARNING: Redis maxmemory-policy is \\\"allkeys-lru\\\"") || !strings.Contains(out, "LOST") {
		t.Errorf("no loud warning: %s", out)
	}
}
