package jobs

import (
	"context"
	"fmt"

	"github.com/formq/formq/actions"
	"github.com/hibiken/asynq"
)

// StepFunc runs one declared step of a submission. It must be idempotent:
// a retry may run it again after a crash. Return an error wrapping
// asynq.SkipRetry for failures a retry cannot fix.
type StepFunc func(ctx context.Context, sub *actions.Submission, cfg map[string]any) error

// Steps maps step types to their code: the built-ins and any registered
// from Go by people embedding formq.
type Steps map[string]StepFunc

// Register adds or replaces a step type.
func (s Steps) Register(name string, fn StepFunc) { s[name] = fn }

func (s Steps) run(ctx context.Context, sub *actions.Submission, step actions.Step) error {
	fn, ok := s[step.Type]
	if !ok {
		return fmt.Errorf("jobs: unknown step type %q: %w", step.Type, asynq.SkipRetry)
	}
	return fn(ctx, sub, step.Config)
}
