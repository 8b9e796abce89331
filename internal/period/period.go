// Package period reads long periods of time, like retention: a number of
// days (90d) or a Go duration (2160h, 30m).
package period

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrSyntax is a period that is neither days nor a Go duration.
var ErrSyntax = errors.New("want a period like 90d or 720h")

// Parse reads "90d" or a Go duration; it must be more than zero.
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100*366 {
			return 0, ErrSyntax
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, ErrSyntax
	}
	return d, nil
}

// Format writes a period as Parse reads it: whole days as 90d.
func Format(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
