package engine

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// testSecret is a Standard Webhooks secret: whsec_ + base64 of 24 bytes.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver records webhook deliveries and checks their signatures with
// its own implementation of the Standard Webhooks spec.
type receiver struct {
	mu     sync.Mutex
	ids    []string
	badSig int
	status atomic.Int32 // answer; 200 when zero
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts, sig := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	rc.mu.Lock()
	rc.ids = append(rc.ids, id)
	if !verifySignature(testSecret, id, ts, sig, body) {
		rc.badSig++
	}
	rc.mu.Unlock()
	if s := rc.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) seen() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...)
}

// verifySignature is a receiver's check, written from the spec rather
// than reusing Sign.
func verifySignature(secret, id, ts, header string, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(t, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(header) {
		if v, ok := strings.CutPrefix(s, "v1,"); ok && hmac.Equal([]byte(v), []byte(want)) {
			return true
		}
	}
	return false
}

func testSubmission(id string) *submission.Submission {
	return &submission.Submission{ID: id, Action: "hook", Values: map[string]any{"name": "Ada"}, Files: []submission.File{}}
}
