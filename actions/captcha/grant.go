package captcha

// Upload grants: a solved captcha buys one post of an action, files
// included. The pre-upload routes (POST /uploads, presign, tus creation)
// store files before the post, so they take the answer first and hand
// back a grant that stands in for it: for a bounded number of further
// uploads, and once for the post itself.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
)

// GrantPrefix starts every grant, so a grant sent in the widget's field
// in place of an answer is told from one.
const GrantPrefix = "formq-grant."

// GrantTTL is how long a grant lasts from the solve: long enough to send
// the files of one form, short enough that a grant is no lasting pass.
const GrantTTL = 15 * time.Minute

// grantPurpose binds sealed grants to their use.
const grantPurpose = "captcha-grant"

// ErrNoGrants means the verifier was built without the sealer and the
// counter grants need.
var ErrNoGrants = errors.New("captcha: upload grants are not configured")

// UseCounter counts the uses of a key that lives ttl from its first use;
// *redisstate.Replays is the implementation.
type UseCounter interface {
	Use(ctx context.Context, key string, ttl time.Duration) (int64, error)
}

// grant is what a sealed grant carries.
type grant struct {
	ID     string `json:"i"`
	Action string `json:"a"`
}

// GrantUploads is how many pre-upload requests one grant admits for an
// action: twice the files the action takes (at least one), so a retried
// upload does not need a new solve, and no more.
func GrantUploads(a *actions.Action) int64 {
	var n int64
	for _, u := range a.Uploads {
		n += int64(u.MaxFiles)
	}
	return max(2*n, 2)
}

// useKey is the counter of a grant's uploads; its post is counted apart.
func useKey(id, use string) string { return submission.CaptchaGrantKey(id + ":" + use) }

// AdmitUpload checks what a pre-upload request of a's captcha carried
// (the Formq-Captcha header): a widget's answer, verified and spent like
// a post's, or a grant from an earlier one, whose uses are counted. For an
// answer it returns a new grant for the rest of the post; for a grant, "".
// A missing, refused or used-up value is a *Refusal.
func (v *Verifier) AdmitUpload(ctx context.Context, a *actions.Action, value, remoteIP string) (string, error) {
	if v.sealer == nil || v.uses == nil {
		return "", ErrNoGrants
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return "", &Refusal{Message: "Complete the challenge before sending files: send its answer in the Formq-Captcha header.", Codes: "missing-input-response (upload)"}
	}
	if strings.HasPrefix(value, GrantPrefix) {
		return "", v.useGrant(ctx, a, value, "uploads", GrantUploads(a))
	}
	if err := v.Verify(ctx, a, value, remoteIP); err != nil {
		return "", err
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	g := grant{ID: hex.EncodeToString(id), Action: a.Name}
	token, err := v.sealer.Seal(grantPurpose, g, GrantTTL)
	if err != nil {
		return "", fmt.Errorf("%w: sealing a grant: %v", ErrUnreachable, err)
	}
	// The answer's own upload is the grant's first.
	if _, err := v.uses.Use(ctx, useKey(g.ID, "uploads"), GrantTTL); err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return GrantPrefix + token, nil
}

// useGrant counts one use of a grant for a and refuses it past limit,
// expired, forged or made for another action.
func (v *Verifier) useGrant(ctx context.Context, a *actions.Action, value, use string, limit int64) error {
	if v.sealer == nil || v.uses == nil {
		return ErrNoGrants
	}
	var g grant
	err := v.sealer.Open(grantPurpose, strings.TrimPrefix(value, GrantPrefix), &g)
	switch {
	case errors.Is(err, actions.ErrTokenExpired):
		return &Refusal{Message: "The challenge expired or was already used; complete it again.", Codes: "expired-grant (formq)"}
	case err != nil, g.Action != a.Name, g.ID == "":
		return &Refusal{Message: "The challenge answer is not valid; complete it again.", Codes: "invalid-grant (formq)"}
	}
	n, err := v.uses.Use(ctx, useKey(g.ID, use), GrantTTL)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if n > limit {
		return &Refusal{Message: "The challenge expired or was already used; complete it again.", Codes: "used-grant (formq)"}
	}
	return nil
}
