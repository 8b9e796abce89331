package actions

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/formq/formq/submission"
)

// ParseOptions tune Parse beyond the file itself.
type ParseOptions struct {
	// Steps are the known step types with their checks. When nil, step
	// types and configurations are not checked (tools that only read
	// forms); the API and the worker always pass them.
	Steps map[string]submission.StepCheck
}

// LoadFileWith reads and checks an actions file with options.
func LoadFileWith(path string, o ParseOptions) ([]*Action, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read actions file: %w", err)
	}
	return ParseWith(path, data, o)
}

// checkStep lists what is wrong with one declared step.
func (o ParseOptions) checkStep(s submission.Step) string {
	if o.Steps == nil {
		return ""
	}
	check, ok := o.Steps[s.Type]
	if !ok {
		known := make([]string, 0, len(o.Steps))
		for k := range o.Steps {
			known = append(known, k)
		}
		slices.Sort(known)
		return fmt.Sprintf("step %q: unknown step type, want one of %s", s.Type, strings.Join(known, ", "))
	}
	if check == nil {
		return ""
	}
	if err := check(s.Config); err != nil {
		return fmt.Sprintf("step %q: %v", s.Type, err)
	}
	return ""
}
