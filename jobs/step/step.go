// Package step is formq's extension point for follow-up work: a step type
// is what a declared step of an action runs (its settings check and its
// run), a sink is where every revalidation event goes besides Redis. The
// built-in steps (jobs/step/webhook, email, thumbnail) and sinks
// (jobs/sink/cdn, next) are written against this package exactly as an
// embedder's own are, and are registered the same way: worker.Options
// takes Steps and Sinks, api.Options takes the same Steps to check actions
// files.
//
// This package links no step's implementation: a process that only checks
// actions files (the API) links it alone.
package step

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// Defaults of every step, which each step type and each declared step may
// change (options timeout, max_attempts, backoff).
const (
	DefaultTimeout  = 30 * time.Second
	DefaultAttempts = 10
	DefaultBackoff  = 2 * time.Second
)

// Run is one attempt of one declared step of a submission.
type Run struct {
	Submission *submission.Submission
	// Config is the step's declaration without the options every step
	// has (timeout, max_attempts, backoff).
	Config  map[string]any
	Index   int // position among the submission's steps
	Attempt int // 1 for the first attempt
	// LogDelivery records a webhook delivery attempt in the step's
	// delivery log; steps that post webhooks hand it to their client.
	LogDelivery func(submission.DeliveryAttempt)
	// Answer records data for the person who submitted, when the step
	// completes (call it, then return nil); only a step with a name
	// keeps it. Never nil when the worker runs a step. To refuse the
	// submission instead, return Reject(...).
	Answer func(Data)
}

// DeliveryID names this step of this submission, the same on every
// attempt, so receivers can drop repeats (webhook-id, Message-ID).
func (r Run) DeliveryID() string { return r.Submission.ID + "_" + strconv.Itoa(r.Index) }

// Func runs one attempt of a step. It must be idempotent: an attempt may
// be repeated after a crash. Return an error from Permanent, or one
// wrapping asynq.SkipRetry, for failures a retry cannot fix, one from Skip
// when the step chose not to act; any other error is retried with
// backoff.
type Func func(ctx context.Context, r Run) error

// CheckFunc validates a step's configuration (without the common
// options) when the actions file loads.
type CheckFunc func(config map[string]any) error

// Type is the code of one step type and its defaults. A process that only
// checks actions files (the API) needs Check alone; Run may be nil there.
type Type struct {
	Run   Func
	Check CheckFunc // nil accepts any configuration
	// Defaults of the common options; zero takes the package default.
	Timeout     time.Duration
	MaxAttempts int
	Backoff     time.Duration
}

// Steps maps step types to their code: the built-ins and any registered
// from Go by people embedding formq.
type Steps map[string]Type

// Register adds or replaces a step type.
func (s Steps) Register(name string, t Type) { s[name] = t }

// Checks are the step checks the actions file is loaded with: unknown
// types, bad common options and bad step configurations stop the process
// at start.
func (s Steps) Checks() map[string]submission.StepCheck {
	out := make(map[string]submission.StepCheck, len(s))
	for name, t := range s {
		out[name] = func(cfg map[string]any) error {
			_, rest, err := t.Options(cfg)
			if err != nil {
				return err
			}
			if t.Check != nil {
				return t.Check(rest)
			}
			return nil
		}
	}
	return out
}

// Options are the options every step takes, read from its declaration
// over its type's defaults.
type Options struct {
	Timeout     time.Duration
	MaxAttempts int
	Backoff     time.Duration // before the first retry; it doubles after
	// Name names the step (name:), so its answered data can fill
	// {steps.NAME.KEY} placeholders; empty when unnamed.
	Name string
}

// stepName is the form of a step's name:.
var stepName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// Options splits a declaration into the common options, over the type's
// defaults, and the rest (the step's own configuration).
func (t Type) Options(cfg map[string]any) (Options, map[string]any, error) {
	o := Options{Timeout: t.Timeout, MaxAttempts: t.MaxAttempts, Backoff: t.Backoff}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	rest := make(map[string]any, len(cfg))
	var errs []error
	for k, v := range cfg {
		switch k {
		case "timeout", "backoff":
			d, err := time.ParseDuration(fmt.Sprint(v))
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s %q: want a duration like 30s", k, fmt.Sprint(v)))
			} else if k == "timeout" {
				o.Timeout = d
			} else {
				o.Backoff = d
			}
		case "name":
			n, ok := v.(string)
			if !ok || !stepName.MatchString(n) {
				errs = append(errs, fmt.Errorf("name %v: want letters, digits, - or _, starting with a letter", v))
			}
			o.Name = n
		case "max_attempts":
			n, err := strconv.Atoi(fmt.Sprint(v))
			if err != nil || n < 1 || n > 100 {
				errs = append(errs, fmt.Errorf("max_attempts %v: want 1 to 100", v))
			}
			o.MaxAttempts = n
		default:
			rest[k] = v
		}
	}
	return o, rest, errors.Join(errs...)
}

// permanentError is a step failure no retry can fix.
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }
func (e *permanentError) Unwrap() error { return asynq.SkipRetry }

// Permanent makes a step failure that is not retried; the message is shown
// to people as the submission's error.
func Permanent(format string, args ...any) error {
	return &permanentError{msg: fmt.Sprintf(format, args...)}
}

// skipError is a step that chose not to act; it is recorded skipped,
// with the message as its note, and never run again.
type skipError struct{ msg string }

func (e *skipError) Error() string { return e.msg }

// Skip makes a step's outcome skipped (done, nothing sent) with why.
func Skip(format string, args ...any) error { return &skipError{msg: fmt.Sprintf(format, args...)} }

// Skipped reports whether err is (or wraps) a Skip, and why.
func Skipped(err error) (why string, ok bool) {
	var s *skipError
	if errors.As(err, &s) {
		return s.msg, true
	}
	return "", false
}

// ErrorText is an error's message as people read it in a submission's
// status: without asynq's retry marker.
func ErrorText(err error) string {
	return strings.TrimSuffix(strings.TrimSuffix(err.Error(), asynq.SkipRetry.Error()), ": ")
}

// Decode reads a step configuration into a struct, refusing unknown keys.
// Numbers may arrive as ints (YAML) or floats (JSON).
func Decode(cfg map[string]any, dst any) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}
