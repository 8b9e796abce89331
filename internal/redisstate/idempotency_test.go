package redisstate

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/submission"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestHeldClaimOutlivesAPendingOne follows a key through a process that
// dies between holding its claim and keeping its answer: the held claim
// lasts the window, not the 2 minutes of a pending claim; a repeat stops
// waiting for it after 2 s (heldWait), not 30; it can be taken over only
// after 10 s held, and only by a request that names the dead holder.
func TestHeldClaimOutlivesAPendingOne(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.StartRedis(t).Client(t)
	r := NewIdempotency(rdb)
	const key, window = "formq:idem:test:k", time.Hour

	if b, err := r.Claim(ctx, key, "first"); err != nil || b != nil {
		t.Fatalf("first claim: %q, %v", b, err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl > 2*time.Minute {
		t.Fatalf("a pending claim lasts %s, want at most 2m", ttl)
	}
	if holder, held, _ := r.Holder(ctx, key); holder != "first" || held {
		t.Fatalf("pending claim: holder %q held %v", holder, held)
	}
	if ok, err := r.Hold(ctx, key, "other", window); err != nil || ok {
		t.Fatalf("another holder held the key: %v, %v", ok, err)
	}
	if ok, err := r.Hold(ctx, key, "first", window); err != nil || !ok {
		t.Fatalf("hold: %v, %v", ok, err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl < window-time.Minute {
		t.Fatalf("a held claim lasts %s, want the window (%s)", ttl, window)
	}
	if holder, held, _ := r.Holder(ctx, key); holder != "first" || !held {
		t.Fatalf("held claim: holder %q held %v", holder, held)
	}

	// The holder's process died: a repeat waits 2 s, not 30.
	start := time.Now()
	_, err := r.Claim(ctx, key, "repeat")
	if !errors.Is(err, submission.ErrBusy) || time.Since(start) > 5*time.Second {
		t.Fatalf("repeat on a held claim: %v after %s; want ErrBusy after about 2s", err, time.Since(start))
	}
	// Held for less than 10 s: not taken over (its holder may be queueing).
	if ok, err := r.Takeover(ctx, key, "first", "repeat", window); err != nil || ok {
		t.Fatalf("takeover of a claim held for 2s: %v, %v", ok, err)
	}
	// Held for 10 s and more (its TTL says so): taken over, pending again.
	rdb.PExpire(ctx, key, window-11*time.Second)
	if ok, err := r.Takeover(ctx, key, "someone-else", "repeat", window); err != nil || ok {
		t.Fatalf("takeover naming another holder: %v, %v", ok, err)
	}
	if ok, err := r.Takeover(ctx, key, "first", "repeat", window); err != nil || !ok {
		t.Fatalf("takeover of a claim held 11s: %v, %v", ok, err)
	}
	if holder, held, _ := r.Holder(ctx, key); holder != "repeat" || held {
		t.Fatalf("after the takeover: holder %q held %v", holder, held)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl > 2*time.Minute {
		t.Fatalf("a taken-over claim lasts %s, want a pending claim's 2m", ttl)
	}

	// Release frees a held claim too.
	if _, err := r.Hold(ctx, key, "repeat", window); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, key, "repeat"); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, key).Val(); n != 0 {
		t.Fatal("Release left a held claim")
	}
}
