package jobs

import (
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/formq/formq/internal/testenv"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// testRedis is a client on a fresh database of the real test Redis.
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	return testenv.StartRedis(t).Client(t)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func redisZ(score int64, member string) redis.Z {
	return redis.Z{Score: float64(score), Member: member}
}
