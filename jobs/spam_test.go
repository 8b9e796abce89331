package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/spam"
	"github.com/formq/formq/submission"
)

// TestSpamMemoryCountsDuplicatesAndRate: in real Redis, the same text
// posted twice (from anywhere) is a duplicate the second time, a client
// posting more than rate.max within rate.per scores from the post after,
// a short text is never a duplicate, the counters expire with their
// window, and no key holds the client's address or the text.
func TestSpamMemoryCountsDuplicatesAndRate(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	c := &spam.Checker{Memory: NewSpamStore(rdb)}
	p := actions.DefaultSpamPolicy()
	p.Rate = actions.SpamRate{Max: 2, Per: time.Hour, Score: 3}
	check := func(ip, text string) []string {
		t.Helper()
		v, err := c.Check(ctx, p, spam.Input{Action: "contact", ClientIP: ip, Values: map[string]any{"message": text}})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range v.Reasons {
			out = append(out, r.Rule+": "+r.Detail)
		}
		return out
	}
	same := "Please call me back about the kitchen quote"
	if got := check("198.51.100.1", same); len(got) != 0 {
		t.Errorf("a first post: %v", got)
	}
	if got := check("198.51.100.2", "  please CALL me back about the kitchen quote "); strings.Join(got, "; ") != "duplicate: the same text was posted 2 times within 1d" {
		t.Errorf("the same text again from elsewhere: %v", got)
	}
	for range 3 {
		check("198.51.100.3", "ok")
	}
	if got := check("198.51.100.3", "a fourth short one"); strings.Join(got, "; ") != "rate: post 4 from this address within 1h (more than 2)" {
		t.Errorf("a client's fourth post: %v", got)
	}
	keys := rdb.Keys(ctx, "formq:spam:seen:*").Val()
	if len(keys) == 0 {
		t.Fatal("no counters kept")
	}
	for _, k := range keys {
		if strings.Contains(k, "198.51.100") || strings.Contains(k, "kitchen") {
			t.Errorf("a counter's key holds personal data: %s", k)
		}
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 24*time.Hour {
			t.Errorf("%s lives %s", k, ttl)
		}
	}
}

// TestSpamModelLearnsOnceAndForgets: a submission teaches the model once;
// marking it the other way moves its counts; erasing it takes them out.
func TestSpamModelLearnsOnceAndForgets(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	x, store := NewIndex(rdb, nil), NewSpamStore(rdb)
	values := map[string]any{"message": "cheap casino bonus"}
	counts := func() spam.Counts {
		t.Helper()
		c, err := store.Counts(ctx, []string{"casino", "bonus"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for range 2 {
		if err := x.Learn(ctx, "01A", values, true); err != nil {
			t.Fatal(err)
		}
	}
	if c := counts(); c.SpamDocs != 1 || c.HamDocs != 0 || c.Spam[0] != 1 || c.Spam[1] != 1 {
		t.Errorf("learnt twice as spam: %+v", c)
	}
	if err := x.Learn(ctx, "01A", values, false); err != nil {
		t.Fatal(err)
	}
	if c := counts(); c.SpamDocs != 0 || c.HamDocs != 1 || c.Spam[0] != 0 || c.Ham[0] != 1 {
		t.Errorf("marked the other way: %+v", c)
	}
	if err := x.forget(ctx, &submission.Submission{ID: "01A", Values: values}); err != nil {
		t.Fatal(err)
	}
	if c := counts(); c.SpamDocs != 0 || c.HamDocs != 0 || c.Ham[0] != 0 || rdb.HLen(ctx, submission.SpamModel).Val() != 2 {
		t.Errorf("forgotten: %+v, model %v", c, rdb.HGetAll(ctx, submission.SpamModel).Val())
	}
}
