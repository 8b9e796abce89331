package builtin

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/internal/period"
	"github.com/formq/formq/jobs/step"
)

// EmailSettings are the declaration of an email step. To is one address
// or a list; subject and body expand {field}, {id} and {action}.
type EmailSettings struct {
	To      any    `json:"to"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
	From    string `json:"from"`
	// Limit caps the messages to a submitter's address ({field}
	// recipients): "5/1h" sends at most 5 an hour to one address.
	Limit string `json:"limit"`
}

// Recipients are the declared recipients, addresses re-written bare and
// placeholders ({field}) kept as they are.
func (c EmailSettings) Recipients() ([]string, error) {
	var list []string
	switch v := c.To.(type) {
	case string:
		list = []string{v}
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, errors.New("to: want addresses")
			}
			list = append(list, s)
		}
	default:
		return nil, errors.New("to: want an address or a list of addresses")
	}
	if len(list) == 0 {
		return nil, errors.New("to: want at least one address")
	}
	for i, a := range list {
		if _, ok := SubmitterPlaceholder(a); ok {
			continue // the submitter's address, filled in per submission
		}
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("to %q: %v", a, err)
		}
		list[i] = addr.Address
	}
	return list, nil
}

// Check reports what is wrong with the settings.
func (c EmailSettings) Check() error {
	to, err := c.Recipients()
	if err != nil {
		return err
	}
	if c.Limit != "" {
		if _, err := ParseRecipientLimit(c.Limit); err != nil {
			return err
		}
		if !slices.ContainsFunc(to, func(a string) bool { _, ok := SubmitterPlaceholder(a); return ok }) {
			return errors.New(`limit: only for a recipient naming the submitter's field, like to: "{email}"`)
		}
	}
	if c.Subject == "" {
		return errors.New("subject: required")
	}
	if c.From != "" {
		if _, err := mail.ParseAddress(c.From); err != nil {
			return fmt.Errorf("from %q: %v", c.From, err)
		}
	}
	return nil
}

// CheckEmail checks an email step's settings.
func CheckEmail(cfg map[string]any) error {
	var c EmailSettings
	if err := step.Decode(cfg, &c); err != nil {
		return err
	}
	return c.Check()
}

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

// RecipientLimit is an email step's limit: at most N messages per
// recipient per period, like "5/1h" ("5/h" is the same).
type RecipientLimit struct {
	N   int
	Per time.Duration
}

// ParseRecipientLimit reads an email step's limit.
func ParseRecipientLimit(s string) (RecipientLimit, error) {
	num, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 1 {
		return RecipientLimit{}, fmt.Errorf("limit %q: want messages per recipient per period, like 5/1h", s)
	}
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per
	}
	d, err := period.Parse(per)
	if err != nil {
		return RecipientLimit{}, fmt.Errorf("limit %q: want messages per recipient per period, like 5/1h", s)
	}
	return RecipientLimit{N: n, Per: d}, nil
}
