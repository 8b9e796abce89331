package actions

import (
	"fmt"
	"strings"

	"github.com/formq/formq/submission"
)

// Expand fills the placeholders of an action's message or redirect:
// {steps.NAME.KEY} from data (the named steps' answers, may be nil), {id}
// and {action}, then fields of sub with a single value;
// an unknown placeholder and one of a list field stay as they are. One
// pass over the template, without building a replacer per request.
func Expand(tmpl string, sub *submission.Submission, data map[string]map[string]string, escape func(string) string) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	var b strings.Builder
	b.Grow(len(tmpl) + 32)
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:open])
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			b.WriteString(tmpl[open:])
			return b.String()
		}
		if v, ok := placeholder(tmpl[open+1:open+end], sub, data); ok {
			b.WriteString(escape(v))
			tmpl = tmpl[open+end+1:]
			continue
		}
		// Not a placeholder: keep the brace and look on after it.
		b.WriteByte('{')
		tmpl = tmpl[open+1:]
	}
}

// placeholder is the value of {name} in a submission's templates.
func placeholder(name string, sub *submission.Submission, data map[string]map[string]string) (string, bool) {
	if v, ok := StepValue(name, data); ok {
		return v, true
	}
	switch name {
	case "id":
		return sub.ID, true
	case "action":
		return sub.Action, true
	}
	v, ok := sub.Values[name]
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case []string:
		return "", false
	default:
		return fmt.Sprint(v), true
	}
}
