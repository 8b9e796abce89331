package jobs

import (
	"net/mail"
	"regexp"
	"strings"

	"github.com/formq/formq/submission"
)

// placeholderTo is a recipient like "{email}": the address the submitter
// gave in that field. The actions file allows it only for a field
// declared type: email.
var placeholderTo = regexp.MustCompile(`^\{([A-Za-z][A-Za-z0-9_-]{0,63})\}$`)

// SubmitterPlaceholder reports whether an email step's recipient names a
// field of the submission, and which.
func SubmitterPlaceholder(to string) (field string, ok bool) {
	m := placeholderTo.FindStringSubmatch(strings.TrimSpace(to))
	if m == nil {
		return "", false
	}
	return m[1], true
}

// submitters fills the recipients that name a field with the address the
// submission holds there: one bare address, or the step fails for good
// (the field is validated as an email address, so this means a record
// changed by hand).
func submitters(to []string, sub *submission.Submission) ([]string, error) {
	out := make([]string, 0, len(to))
	for _, t := range to {
		field, ok := SubmitterPlaceholder(t)
		if !ok {
			out = append(out, t)
			continue
		}
		v, _ := sub.Values[field].(string)
		addr, err := mail.ParseAddress(v)
		if v == "" || err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(v) {
			return nil, Permanent("to %s: the submission holds no single email address there", t)
		}
		out = append(out, addr.Address)
	}
	return out, nil
}
