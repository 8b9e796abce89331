package actions

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
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

// checkThumbnailTypes lists what is wrong with the upload fields an
// action's thumbnail steps read: each must be an upload field of the
// action that accepts only types the step decodes
// (submission.ThumbnailTypes). A wildcard like image/* and a field
// without types admit HEIC, AVIF and more, so they are refused too.
func checkThumbnailTypes(a *Action) (problems [][2]string) {
	add := func(field, format string, args ...any) {
		problems = append(problems, [2]string{field, fmt.Sprintf(format, args...)})
	}
	decodes := strings.Join(submission.ThumbnailTypes, ", ")
	for i, s := range a.Steps {
		if s.Type != submission.ThumbnailStep {
			continue
		}
		step := fmt.Sprintf("step %d (%s)", i+1, s.Type)
		field, _ := s.Config["field"].(string)
		if field == "" {
			continue // the step's own check says so
		}
		u := a.Upload(field)
		if u == nil {
			add(field, "%s: field %q is not an upload field of the action", step, field)
			continue
		}
		if len(u.Types) == 0 {
			add(field, "%s: upload field %q accepts any type, and the step decodes only %s: give the field types from those", step, field, decodes)
			continue
		}
		for _, t := range u.Types {
			if !thumbnailDecodes(t) {
				add(field, "%s: upload field %q accepts %s, which the step cannot decode (it decodes %s): remove it from the field's types or drop the step", step, field, t, decodes)
			}
		}
	}
	return problems
}

// thumbnailDecodes reports whether every file an accepted type admits is
// one the thumbnail step decodes: a decodable type or one of its aliases
// (image/jpg), never a wildcard.
func thumbnailDecodes(accepted string) bool {
	if strings.HasSuffix(accepted, "/*") {
		return false
	}
	for _, d := range submission.ThumbnailTypes {
		if uploads.TypeAllowed(d, []string{accepted}) {
			return true
		}
	}
	return false
}

// submitterTo is an email step recipient naming a field, like "{email}".
var submitterTo = regexp.MustCompile(`^\{([A-Za-z][A-Za-z0-9_-]{0,63})\}$`)

// checkSubmitterMail lists what is wrong with the recipients of an
// action's email steps that name one of its fields (an autoresponder): the
// field must be declared type: email, so only a validated address is
// ever mailed; and since a visitor chooses that address and part of the
// text, the step needs a limit and the action a guard against scripts
// (captcha, rate_limit or min_fill_time), or the form is an anonymous
// mail relay. It marks the fields mailed as recipients.
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
		mailsSubmitter := ""
		for _, to := range list {
			m := submitterTo.FindStringSubmatch(strings.TrimSpace(to))
			if m == nil {
				continue
			}
			mailsSubmitter = to
			f := a.Field(m[1])
			switch {
			case f == nil:
				msgs = append(msgs, fmt.Sprintf("email step: to %q names no field of the action", to))
			case f.Type != "email":
				msgs = append(msgs, fmt.Sprintf("email step: to %q names field %s of type %s; an autoresponder may only mail a field declared type: email", to, f.Name, f.Type))
			default:
				f.Recipient = true
			}
		}
		if mailsSubmitter == "" {
			continue
		}
		if l, _ := s.Config["limit"].(string); strings.TrimSpace(l) == "" {
			msgs = append(msgs, fmt.Sprintf("email step: to %q mails whoever the visitor names: add limit: (like 3/1h) so the form cannot flood one inbox", mailsSubmitter))
		}
		if a.Captcha == nil && a.RateLimit == nil && a.MinFillTime <= 0 {
			msgs = append(msgs, fmt.Sprintf("email step: to %q mails whoever the visitor names: the action needs captcha:, rate_limit: or min_fill_time: so scripts cannot use it as an anonymous mail relay", mailsSubmitter))
		}
	}
	return msgs
}
