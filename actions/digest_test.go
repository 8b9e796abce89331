package actions

import (
	"strings"
	"testing"
	"time"
)

// TestDigestKey: digest: loads with its defaults or refuses, saying what
// to fix; its period ends at the last "at" in its timezone, daylight
// saving time included.
func TestDigestKey(t *testing.T) {
	load := func(digest string) (*Digest, error) {
		t.Helper()
		as, err := Parse("actions.yaml", []byte("actions:\n  contact:\n    fields:\n      email: {type: email}\n    digest: "+digest+"\n"))
		if err != nil {
			return nil, err
		}
		return as[0].Digest, nil
	}
	d, err := load(`{to: team@example.com}`)
	if err != nil || d.At != "08:00" || d.Location != time.UTC || strings.Join(d.To, ",") != "team@example.com" {
		t.Fatalf("defaults: %+v %v", d, err)
	}
	for digest, want := range map[string]string{
		`{at: "08:00"}`:                          "digest: to: name who gets the digest",
		`{to: "{email}"}`:                        `digest: to "{email}": want an email address`,
		`{to: [a@example.com, nope]}`:            `digest: to "nope": want an email address`,
		`{to: a@example.com, at: "8am"}`:         `digest: at "8am": want a time like 08:00`,
		`{to: a@example.com, timezone: Mars/Up}`: `digest: timezone "Mars/Up": want an IANA name`,
		`{to: a@example.com, every: day}`:        "every",
	} {
		if _, err := load(digest); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("digest: %s: %v, want %q", digest, err, want)
		}
	}

	d, err = load(`{to: [a@example.com, b@example.com], at: "07:30", timezone: Europe/Paris}`)
	if err != nil {
		t.Fatal(err)
	}
	paris := d.Location
	for _, c := range []struct{ now, from, until, day string }{
		{"2026-03-10 07:29", "2026-03-08 07:30", "2026-03-09 07:30", "2026-03-09"},
		{"2026-03-10 07:30", "2026-03-09 07:30", "2026-03-10 07:30", "2026-03-10"},
		// Clocks go forward on March 29th: that day is 23 hours long.
		{"2026-03-29 12:00", "2026-03-28 07:30", "2026-03-29 07:30", "2026-03-29"},
	} {
		now, _ := time.ParseInLocation("2006-01-02 15:04", c.now, paris)
		from, until, day := d.Period(now)
		if got := from.In(paris).Format("2006-01-02 15:04") + " " + until.In(paris).Format("2006-01-02 15:04") + " " + day; got != c.from+" "+c.until+" "+c.day {
			t.Errorf("at %s: %s, want %s %s %s", c.now, got, c.from, c.until, c.day)
		}
	}
	if from, until, _ := d.Period(time.Date(2026, 3, 29, 12, 0, 0, 0, paris)); until.Sub(from) != 23*time.Hour {
		t.Errorf("the period over the change to summer time lasts %s", until.Sub(from))
	}
}
