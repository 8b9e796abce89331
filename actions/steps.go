package actions

import (
	"fmt"
	"os"
	"regexp"
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

// submitterTo is an email step recipient naming a field, like "{email}".
var submitterTo = regexp.MustCompile(`^\{([A-Za-z][A-Za-z0-9_-]{0,63})\}$`)

// checkSubmitterMail lists what is wrong with the recipients of an
// action's email steps that name one of its fields (an autoresponder): the
// field must be declared type: email, so only a validated address is
// ever mailed.
func checkSubmitterMail(a *Action) []string {
	var msgs []string
	for _, s := range a.Steps {
		if s.Type != "email" {
			continue
		}
		var list []string
		switch v := s.Config["to"].(type) {
		case string:
			list = []string{v}
		case []any:
			for _, x := range v {
				if str, ok := x.(string); ok {
					list = append(list, str)
				}
			}
		}
		for _, to := range list {
			m := submitterTo.FindStringSubmatch(strings.TrimSpace(to))
			if m == nil {
				continue
			}
			f := a.Field(m[1])
			switch {
			case f == nil:
				msgs = append(msgs, fmt.Sprintf("email step: to %q names no field of the action", to))
			case f.Type != "email":
				msgs = append(msgs, fmt.Sprintf("email step: to %q names field %s of type %s; an autoresponder may only mail a field declared type: email", to, f.Name, f.Type))
			}
		}
	}
	return msgs
}
