package actions

// What an action's steps may answer the person: step names, {steps.NAME.KEY}
// placeholders in the message and redirect, and how long the API waits
// for the answer (wait:).

import (
	"fmt"
	"strings"
	"time"

	"github.com/formq/formq/submission"
)

// MaxWait is the longest an action may hold its answer (wait:).
const MaxWait = 10 * time.Second

// StepName is the name: of a declared step, or "".
func StepName(s submission.Step) string {
	n, _ := s.Config["name"].(string)
	return n
}

// parseWait reads an action's wait:, a duration up to MaxWait.
func parseWait(s string) (time.Duration, string) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxWait {
		return 0, fmt.Sprintf("wait %q: want a duration up to %s, like 2s", s, MaxWait)
	}
	return d, ""
}

// checkAnswers reports step names used twice and {steps.NAME.KEY}
// placeholders of the message and redirect naming no declared step.
func checkAnswers(a *Action) []string {
	var msgs []string
	names := map[string]bool{}
	for i, s := range a.Steps {
		n := StepName(s)
		if n == "" {
			continue
		}
		if names[n] {
			msgs = append(msgs, fmt.Sprintf("step %d (%s): name %q is used by an earlier step", i+1, s.Type, n))
		}
		names[n] = true
	}
	for _, t := range []struct{ key, tmpl string }{{"message", a.Message}, {"redirect", a.Redirect}} {
		for _, p := range stepPlaceholders(t.tmpl) {
			name, key, ok := strings.Cut(p, ".")
			switch {
			case !ok || name == "" || key == "":
				msgs = append(msgs, fmt.Sprintf("%s: placeholder {steps.%s}: want {steps.NAME.KEY}", t.key, p))
			case !names[name]:
				msgs = append(msgs, fmt.Sprintf("%s: placeholder {steps.%s}: no step is named %q (give the step name: %s)", t.key, p, name, name))
			}
		}
	}
	return msgs
}

// stepPlaceholders lists what follows "steps." in each {steps....}
// placeholder of a template.
func stepPlaceholders(tmpl string) []string {
	var out []string
	for {
		i := strings.Index(tmpl, "{steps.")
		if i < 0 {
			return out
		}
		tmpl = tmpl[i+len("{steps."):]
		end := strings.IndexByte(tmpl, '}')
		if end < 0 {
			return out
		}
		out = append(out, tmpl[:end])
		tmpl = tmpl[end+1:]
	}
}

// UsesStepData reports whether a message or redirect template has
// {steps.NAME.KEY} placeholders: it is complete only once its steps
// answered.
func UsesStepData(tmpl string) bool { return strings.Contains(tmpl, "{steps.") }

// StepValue is the value of a {steps.NAME.KEY} placeholder (name is
// "steps.NAME.KEY" without braces) in data, the named steps' answers.
func StepValue(name string, data map[string]map[string]string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "steps.")
	if !ok {
		return "", false
	}
	step, key, ok := strings.Cut(rest, ".")
	if !ok {
		return "", false
	}
	v, ok := data[step][key]
	return v, ok
}
