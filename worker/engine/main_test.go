package engine

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/formq/formq/internal/webhooktest"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// testRedis is a client on a fresh database of the real test Redis.
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	return testenv.StartRedis(t).Client(t)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// memRecords keeps records in memory; the S3 path of records is covered
// by the end-to-end tests.
type memRecords struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (r *memRecords) PutJSON(_ context.Context, key string, body []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string][]byte{}
	}
	r.m[key] = body
	return nil
}

// testSecret signs the test webhooks; receiver checks them.
const testSecret = webhooktest.Secret

// receiver records webhook deliveries and checks their signatures.
type receiver = webhooktest.Receiver

func testSubmission(id string) *submission.Submission {
	return &submission.Submission{ID: id, Action: "hook", Values: map[string]any{"name": "Ada"}, Files: []submission.File{}}
}
