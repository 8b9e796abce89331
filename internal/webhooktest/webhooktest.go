// Package webhooktest is a webhook receiver for formq's tests: it records
// the deliveries it gets and checks their Standard Webhooks signatures
// with its own reading of the spec, not formq's signing code.
package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Secret is a Standard Webhooks secret: whsec_ + base64 of 24 bytes.
const Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// Receiver records webhook deliveries signed with Secret and answers
// Status (204 when zero).
type Receiver struct {
	// Status is the answer to every delivery; 204 when zero.
	Status atomic.Int32

	mu     sync.Mutex
	ids    []string
	bodies [][]byte
	badSig int
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts, sig := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	rc.mu.Lock()
	rc.ids = append(rc.ids, id)
	rc.bodies = append(rc.bodies, body)
	if !Verify(Secret, id, ts, sig, body) {
		rc.badSig++
	}
	rc.mu.Unlock()
	if s := rc.Status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Seen are the webhook-ids of the deliveries so far, in order.
func (rc *Receiver) Seen() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...)
}

// Bodies are the bodies of the deliveries so far, in order.
func (rc *Receiver) Bodies() [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][]byte(nil), rc.bodies...)
}

// BadSignatures counts the deliveries whose signature did not verify.
func (rc *Receiver) BadSignatures() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.badSig
}

// Verify is a receiver's check of a webhook-signature header, written
// from the Standard Webhooks spec: v1, base64 of HMAC-SHA256 over
// "id.timestamp.body", with a timestamp within 5 minutes.
func Verify(secret, id, ts, header string, body []byte) bool {
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
