package period

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour, "720h": 720 * time.Hour, "30m": 30 * time.Minute} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got, _ := Parse(Format(want)); got != want {
			t.Errorf("Format(%v) does not read back", want)
		}
	}
	for _, bad := range []string{"", "0d", "-1d", "d", "1.5d", "forever", "0s", "-3h"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
