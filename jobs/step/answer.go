package step

// What a step answers the person who submitted: data for the action's
// message and redirect, or a refusal with field errors.

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Data is what a named step answers: values the action's message and
// redirect use as {steps.NAME.KEY} placeholders. Keys are like field
// names (letters, digits, _ and -).
type Data map[string]string

// Limits of a step's answer.
const (
	// MaxDataKeys bounds how many values one step may answer.
	MaxDataKeys = 64
	// MaxDataValue bounds one answered value, in bytes.
	MaxDataValue = 2048
)

// dataKey is the form of an answered data key.
var dataKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Check reports why data cannot be recorded, or nil.
func (d Data) Check() error {
	if len(d) > MaxDataKeys {
		return fmt.Errorf("data has %d keys, at most %d", len(d), MaxDataKeys)
	}
	for k, v := range d {
		if !dataKey.MatchString(k) {
			return fmt.Errorf("data key %q: want letters, digits, _ or -", k)
		}
		if len(v) > MaxDataValue {
			return fmt.Errorf("data %q: %d bytes, at most %d", k, len(v), MaxDataValue)
		}
	}
	return nil
}

// Rejection is a step's refusal of a submission, as the app's own check
// answers it ("This email is already registered"): the submission ends
// rejected, its following steps do not run, no revalidation event is
// published, and its files are kept for the resend. Errors holds messages
// by field name; Message is for the whole form.
type Rejection struct {
	Errors  map[string][]string
	Message string
}

// Reject makes a step's refusal. A step returns it instead of an error;
// it is never retried. At least one of errs and message must be given.
func Reject(errs map[string][]string, message string) error {
	return &Rejection{Errors: errs, Message: message}
}

func (r *Rejection) Error() string {
	parts := make([]string, 0, len(r.Errors)+1)
	if r.Message != "" {
		parts = append(parts, r.Message)
	}
	fields := make([]string, 0, len(r.Errors))
	for f := range r.Errors {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		parts = append(parts, f+": "+strings.Join(r.Errors[f], " "))
	}
	return "refused: " + strings.Join(parts, "; ")
}

// Check reports why the refusal cannot be shown to people, or nil.
func (r *Rejection) Check() error {
	if len(r.Errors) == 0 && strings.TrimSpace(r.Message) == "" {
		return errors.New("a refusal needs errors or a message")
	}
	if len(r.Message) > MaxDataValue {
		return fmt.Errorf("message: %d bytes, at most %d", len(r.Message), MaxDataValue)
	}
	if len(r.Errors) > MaxDataKeys {
		return fmt.Errorf("errors for %d fields, at most %d", len(r.Errors), MaxDataKeys)
	}
	for f, msgs := range r.Errors {
		if f == "" || len(f) > 128 {
			return fmt.Errorf("errors: field name %q", f)
		}
		if len(msgs) == 0 {
			return fmt.Errorf("errors.%s: want at least one message", f)
		}
		for _, m := range msgs {
			if strings.TrimSpace(m) == "" || len(m) > MaxDataValue {
				return fmt.Errorf("errors.%s: each message must be 1 to %d bytes", f, MaxDataValue)
			}
		}
	}
	return nil
}

// Rejected reports whether err is (or wraps) a Rejection, and which.
func Rejected(err error) (*Rejection, bool) {
	var r *Rejection
	if errors.As(err, &r) {
		return r, true
	}
	return nil, false
}
