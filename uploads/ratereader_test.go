package uploads

import (
	"errors"
	"testing"
	"time"
)

// dribble sends one byte every 20 ms.
type dribble struct{}

func (dribble) Read(p []byte) (int, error) {
	time.Sleep(20 * time.Millisecond)
	p[0] = 0
	return 1, nil
}

// readFor reads r until an error or d has passed; the error, if any.
func readFor(r *rateReader, d time.Duration) error {
	buf := make([]byte, 8<<10)
	for end := time.Now().Add(d); time.Now().Before(end); {
		if _, err := r.Read(buf); err != nil {
			return err
		}
	}
	return nil
}

// A slow body is measured over the whole period while nobody waits for
// a buffer, and over the short period while someone does.
func TestRateReaderChecksSoonerUnderPressure(t *testing.T) {
	b := newBudget(1, time.Second, 1)
	calm := newRateReader(dribble{}, 1<<10, 3*time.Second, b)
	if err := readFor(calm, time.Second); err != nil {
		t.Fatalf("without waiters a slow body was cut before its period: %v", err)
	}
	b.waiting.Add(1)
	defer b.waiting.Add(-1)
	pressed := newRateReader(dribble{}, 1<<10, 3*time.Second, b)
	if pressed.short != 500*time.Millisecond {
		t.Fatalf("short period %s, want 500ms (a tenth of 3s is less)", pressed.short)
	}
	if err := readFor(pressed, 2500*time.Millisecond); !errors.Is(err, ErrTooSlow) {
		t.Fatalf("with a waiter the slow body was not cut within its short period: %v", err)
	}
	fast := newRateReader(&burst{}, 1<<10, 3*time.Second, b)
	if err := readFor(fast, 1500*time.Millisecond); err != nil {
		t.Fatalf("a body above the minimum pace was cut under pressure: %v", err)
	}
}

// burst sends 4 KiB every 20 ms, well above 1 KiB/s.
type burst struct{}

func (*burst) Read(p []byte) (int, error) {
	time.Sleep(20 * time.Millisecond)
	return min(len(p), 4<<10), nil
}
