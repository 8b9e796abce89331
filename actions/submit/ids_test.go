package submit

import (
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// Ids made in the same millisecond used to differ by a small increment of
// one random start (ulid.Make's monotonic reader): knowing one id gave the
// next. Every id must carry fresh entropy.
func TestAttackGuessNextSubmissionID(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	h, _ := New(Config{Now: func() time.Time { return at }}, Deps{})
	prev := ulid.MustParse(h.newID())
	same := 0
	for range 1000 {
		id := ulid.MustParse(h.newID())
		if id.Time() != prev.Time() {
			prev = id
			continue
		}
		same++
		a, b := prev.Entropy(), id.Entropy()
		if a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] {
			t.Fatalf("ids %s and %s of one millisecond share their first 32 bits of entropy: the next id is guessable", prev, id)
		}
		prev = id
	}
	if same == 0 {
		t.Fatal("no two ids of one millisecond to compare")
	}
}
