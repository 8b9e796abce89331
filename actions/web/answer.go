package web

import (
	"sort"
	"strings"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
)

// AppErrors are the field errors and form message of a submission the app
// refused, as its form shows them: errors of declared fields (and upload
// fields) stay beside them; the others are added to the message, never
// dropped. The message is ErrValidation's when the app gave none.
func AppErrors(a *actions.Action, st *submission.Status) (actions.FieldErrors, string) {
	fields := actions.FieldErrors{}
	var extra []string
	names := make([]string, 0, len(st.Errors))
	for name := range st.Errors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		msgs := st.Errors[name]
		if a != nil && (a.Field(name) != nil || a.Upload(name) != nil) {
			fields[name] = append(fields[name], msgs...)
			continue
		}
		extra = append(extra, msgs...)
	}
	msg := strings.TrimSpace(st.Message)
	if len(extra) > 0 {
		msg = strings.TrimSpace(msg + " " + strings.Join(extra, " "))
	}
	if msg == "" {
		msg = ErrValidation.Message
	}
	return fields, msg
}
