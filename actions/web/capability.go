package web

import (
	"crypto/subtle"
	"net/url"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// CapabilityTTL is how long the token of a statusUrl opens its
// submission's status.
const CapabilityTTL = 30 * 24 * time.Hour

// capabilityPurpose separates status tokens from every other sealed token.
const capabilityPurpose = "status"

// Capability is what a statusUrl's t= token carries, sealed: only the
// submitter receives it, so only the submitter (and the admin) can read
// the submission's status. A decoy is the fake success of a filled
// honeypot: it answers like a real submission and nothing is stored.
type Capability struct {
	ID     string    `json:"id"`
	Action string    `json:"a"`
	Decoy  bool      `json:"d,omitempty"`
	At     time.Time `json:"at"`
	// Back is the page the form was posted from, when it is on an
	// allowed origin of the action: the done page links back to it.
	Back string `json:"b,omitempty"`
}

// StatusURL is the statusUrl of a submission: its path with the sealed
// capability tok (from SealCapability) that opens it.
func (s *Site) StatusURL(c echo.Context, sub *submission.Submission, tok string) string {
	u := s.Link(c, "/submissions/"+sub.ID)
	if tok != "" {
		u += "?t=" + url.QueryEscape(tok)
	}
	return u
}

// SealCapability seals the capability of a submission, with the page it
// was posted from (back, checked by the caller; may be empty); empty
// when it cannot (no sealer).
func SealCapability(sealer actions.Sealer, sub *submission.Submission, decoy bool, back string) string {
	if sealer == nil {
		return ""
	}
	tok, err := sealer.Seal(capabilityPurpose, Capability{ID: sub.ID, Action: sub.Action, Decoy: decoy, At: sub.ReceivedAt, Back: back}, CapabilityTTL)
	if err != nil {
		return ""
	}
	return tok
}

// OpenCapability opens a statusUrl's token for the submission id; false
// when it is missing, forged, expired or another submission's.
func OpenCapability(sealer actions.Sealer, tok, id string) (Capability, bool) {
	var cp Capability
	if tok == "" || sealer == nil || sealer.Open(capabilityPurpose, tok, &cp) != nil || cp.ID != id {
		return Capability{}, false
	}
	return cp, true
}

// Bearer reports whether the request carries token as a bearer; never
// when token is empty.
func Bearer(c echo.Context, token string) bool {
	if token == "" {
		return false
	}
	scheme, given, ok := strings.Cut(c.Request().Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(given)), []byte(token)) == 1
}
