package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestAutoresponderLimitCountsMailboxesAndDomains runs the autoresponder
// on real Redis: eight spellings of one Gmail mailbox under limit 2/1h
// get two messages, not eight; a third mailbox spelling at another
// provider with +tags counts once too; the deployment's cap per domain
// stops messages to many mailboxes of one domain; no key names an
// address or a plain SHA-256 of one.
func TestAutoresponderLimitCountsMailboxesAndDomains(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	limiter := NewRedisRecipients(rdb)
	limiter.DomainLimit = 5
	box := &outbox{}
	st := Step(box, limiter)
	cfg := map[string]any{"to": "{email}", "subject": "Thanks {email}", "limit": "2/1h"}
	run := func(id, addr string) error {
		sub := &submission.Submission{ID: id, Action: "contact", Values: map[string]any{"email": addr}}
		return st.Run(ctx, step.Run{Submission: sub, Config: cfg})
	}
	for i, a := range []string{"victim@gmail.com", "v.ictim@gmail.com", "victim+1@gmail.com", "Victim@googlemail.com",
		"vic.tim+x@googlemail.com", "VICTIM@gmail.com", "victim+spam@gmail.com", "v.i.c.t.i.m@gmail.com"} {
		run(fmt.Sprintf("g%d", i), a)
	}
	if len(box.sent) != 2 {
		t.Errorf("one Gmail mailbox got %d messages under limit 2/1h", len(box.sent))
	}
	box.sent = nil
	for i, a := range []string{"ada+1@small.example", "ada+2@small.example", "ada@small.example"} {
		run(fmt.Sprintf("s%d", i), a)
	}
	if len(box.sent) != 2 {
		t.Errorf("one mailbox with +tags got %d messages under limit 2/1h", len(box.sent))
	}
	box.sent = nil
	var skipped int
	for i := range 6 {
		err := run(fmt.Sprintf("d%d", i), fmt.Sprintf("user%d@tiny.example", i))
		if _, ok := step.Skipped(err); ok && strings.Contains(err.Error(), "domain") {
			skipped++
		}
	}
	if len(box.sent) != 5 || skipped != 1 {
		t.Errorf("a domain capped at 5 got %d messages, %d skipped for the cap", len(box.sent), skipped)
	}
	keys, _ := rdb.Keys(ctx, "*").Result()
	for _, k := range keys {
		if strings.Contains(k, "victim") || strings.Contains(k, "example") || strings.Contains(k, sha256Hex("victim@gmail.com")) {
			t.Errorf("a key names an address: %s", k)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
