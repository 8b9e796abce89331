package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/formq/formq/jobs/step"
	"github.com/hibiken/asynq"
)

// maxStepBackoff caps the wait between a step's attempts.
const maxStepBackoff = 10 * time.Minute

// backoff is the wait after a step's attempt-th failure: exponential from
// the step's base, capped, with up to 20% jitter against thundering herds.
func backoff(o step.Options, attempt int) time.Duration {
	d := o.Backoff
	for i := 1; i < attempt && d < maxStepBackoff; i++ {
		d *= 2
	}
	d = min(d, maxStepBackoff)
	return d + time.Duration(float64(d)*0.2*rand.Float64())
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
	return backoff(step.Options{Backoff: step.DefaultBackoff}, n+1)
}
