package actions

// The daily digest email of an action: one message a day listing the
// submissions of the day before it.

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	_ "time/tzdata" // timezones also where the system has no zoneinfo

	"go.yaml.in/yaml/v3"
)

// Digest is an action's daily digest: at At in Location every day, one
// email to To listing the submissions received since the digest before.
type Digest struct {
	To       []string
	At       string // "HH:MM", 24-hour clock
	Location *time.Location
	hour     int
	minute   int
}

// DefaultDigestAt is when a digest goes out when the action does not say.
const DefaultDigestAt = "08:00"

// rawDigest is the digest: key as written.
type rawDigest struct {
	To       yaml.Node `yaml:"to"`
	At       string    `yaml:"at"`
	Timezone string    `yaml:"timezone"`
}

// parseDigest checks a digest: key; the problems name what to fix.
func parseDigest(r *rawDigest) (*Digest, []string) {
	var problems []string
	d := &Digest{At: r.At, Location: time.UTC}
	var to []string
	switch r.To.Kind {
	case yaml.ScalarNode:
		to = []string{r.To.Value}
	case yaml.SequenceNode:
		for _, n := range r.To.Content {
			to = append(to, n.Value)
		}
	}
	for _, addr := range to {
		if _, err := mail.ParseAddress(addr); err != nil || strings.ContainsAny(addr, "{}") {
			problems = append(problems, fmt.Sprintf("digest: to %q: want an email address", addr))
			continue
		}
		d.To = append(d.To, addr)
	}
	if len(to) == 0 {
		problems = append(problems, "digest: to: name who gets the digest (an address or a list)")
	}
	if d.At == "" {
		d.At = DefaultDigestAt
	}
	t, err := time.Parse("15:04", d.At)
	if err != nil {
		problems = append(problems, fmt.Sprintf("digest: at %q: want a time like 08:00", d.At))
	}
	d.hour, d.minute = t.Hour(), t.Minute()
	if r.Timezone != "" {
		loc, err := time.LoadLocation(r.Timezone)
		if err != nil {
			problems = append(problems, fmt.Sprintf("digest: timezone %q: want an IANA name like Europe/Paris", r.Timezone))
		} else {
			d.Location = loc
		}
	}
	return d, problems
}

// Period is the digest due at now: the last time it was scheduled, at or
// before now, and the submissions it lists, received from the time it
// was scheduled the day before until then. Day names its date in the
// digest's timezone.
func (d *Digest) Period(now time.Time) (from, until time.Time, day string) {
	local := now.In(d.Location)
	until = time.Date(local.Year(), local.Month(), local.Day(), d.hour, d.minute, 0, 0, d.Location)
	if until.After(local) {
		until = time.Date(local.Year(), local.Month(), local.Day()-1, d.hour, d.minute, 0, 0, d.Location)
	}
	from = time.Date(until.Year(), until.Month(), until.Day()-1, d.hour, d.minute, 0, 0, d.Location)
	return from, until, until.Format(time.DateOnly)
}
