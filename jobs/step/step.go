package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// Defaults of every step, which each step type and each declared step may
// change (options timeout, max_attempts, backoff).
const (
	DefaultStepTimeout  = 30 * time.Second
	DefaultStepAttempts = 10
	DefaultStepBackoff  = 2 * time.Second
	maxStepBackoff      = 10 * time.Minute
)

// StepRun is one attempt of one declared step of a submission.
type StepRun struct {
	Submission *submission.Submission
	// Config is the step's declaration without the options every step
	// has (timeout, max_attempts, backoff).
	Config  map[string]any
	Index   int // position among the submission's steps
	Attempt int // 1 for the first attempt
	// LogDelivery records a webhook delivery attempt in the step's
	// delivery log; steps that post webhooks hand it to Delivery.Log.
	LogDelivery func(submission.DeliveryAttempt)
}

// DeliveryID names this step of this submission, the same on every
// attempt, so receivers can drop repeats (webhook-id, Message-ID).
func (r StepRun) DeliveryID() string { return r.Submission.ID + "_" + strconv.Itoa(r.Index) }

// StepFunc runs one attempt of a step. It must be idempotent: an attempt
// may be repeated after a crash. Return an error from Permanent, or one
// wrapping asynq.SkipRetry, for failures a retry cannot fix; any other
// error is retried with backoff.
type StepFunc func(ctx context.Context, r StepRun) error

// CheckFunc validates a step's configuration (without the common
// options) when the actions file loads.
type CheckFunc func(config map[string]any) error

// StepType is the code of one step type and its defaults.
type StepType struct {
	Run   StepFunc
	Check CheckFunc // nil accepts any configuration
	// Defaults of the common options; zero takes the package default.
	Timeout     time.Duration
	MaxAttempts int
	Backoff     time.Duration
}

// Steps maps step types to their code: the built-ins and any registered
// from Go by people embedding formq.
type Steps map[string]StepType

// Register adds or replaces a step type.
func (s Steps) Register(name string, t StepType) { s[name] = t }

// Checks are the step checks the actions file is loaded with: unknown
// types, bad common options and bad step configurations stop the process
// at start.
func (s Steps) Checks() map[string]submission.StepCheck {
	out := make(map[string]submission.StepCheck, len(s))
	for name, t := range s {
		out[name] = func(cfg map[string]any) error {
			_, rest, err := t.options(cfg)
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

// stepOptions are the options every step takes.
type stepOptions struct {
	Timeout     time.Duration
	MaxAttempts int
	Backoff     time.Duration
}

// options splits a declaration into the common options, over the type's
// defaults, and the rest.
func (t StepType) options(cfg map[string]any) (stepOptions, map[string]any, error) {
	o := stepOptions{Timeout: t.Timeout, MaxAttempts: t.MaxAttempts, Backoff: t.Backoff}
	if o.Timeout <= 0 {
		o.Timeout = DefaultStepTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultStepAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultStepBackoff
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

// backoff is the wait after a step's attempt-th failure: exponential from
// the step's base, capped, with up to 20% jitter against thundering herds.
func (o stepOptions) backoff(attempt int) time.Duration {
	d := o.Backoff
	for i := 1; i < attempt && d < maxStepBackoff; i++ {
		d *= 2
	}
	d = min(d, maxStepBackoff)
	return d + time.Duration(float64(d)*0.2*rand.Float64())
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

// readable is an error's message without asynq's retry marker.
func readable(err error) string {
	return strings.TrimSuffix(strings.TrimSuffix(err.Error(), asynq.SkipRetry.Error()), ": ")
}

// StepError is a failed attempt of a step that will be retried; the
// worker's retry delay reads the attempt from it.
type StepError struct {
	Index   int
	Type    string
	Attempt int
	Delay   time.Duration
	Err     error
	final   bool // the step failed for good (recorded failed)
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d (%s) attempt %d: %v", e.Index+1, e.Type, e.Attempt, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// RetryDelay is the asynq RetryDelayFunc of formq's worker: a failed step
// waits its own backoff; any other failure of a run (the record write, a
// status write, the event) waits the default step backoff for the n-th
// retry (2 s, 4 s, 8 s, ...), not asynq's default of 15 s and more.
func RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	var se *StepError
	if errors.As(err, &se) && se.Delay > 0 {
		return se.Delay
	}
	return stepOptions{Backoff: DefaultStepBackoff}.backoff(n + 1)
}

// decodeConfig reads a step configuration into a struct, refusing
// unknown keys. Numbers may arrive as ints (YAML) or floats (JSON).
func decodeConfig(cfg map[string]any, dst any) error {
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
