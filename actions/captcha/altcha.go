package captcha

// ALTCHA: a proof-of-work challenge formq issues and checks itself
// (ALTCHA's v1 challenge, which the altcha widget solves: SHA-256 over the
// salt and a secret number below maxnumber). The salt carries the expiry
// and the action; the signature is an HMAC under a key of the action's
// own, so a challenge is good for one action, until it expires, once.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/labstack/echo/v4"
)

// AltchaAlgorithm is the only hash formq's challenges use.
const AltchaAlgorithm = "SHA-256"

// Challenge is ALTCHA's challenge JSON, as GET /actions/{name}/challenge
// answers it and the widget reads it.
type Challenge struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	MaxNumber int64  `json:"maxnumber"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
}

// AltchaSolution is the widget's payload (base64 JSON, in the field
// altcha): the challenge it solved and the number found.
type AltchaSolution struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	Number    int64  `json:"number"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
}

// altchaKey is the action's own HMAC key, derived from its secret: a
// challenge signed for one action does not verify for another.
func (v *Verifier) altchaKey(a *actions.Action) []byte {
	m := hmac.New(sha256.New, []byte(v.secrets[a.Name]))
	m.Write([]byte("formq altcha challenge\x00" + a.Name))
	return m.Sum(nil)
}

func (v *Verifier) sign(a *actions.Action, challenge string) string {
	m := hmac.New(sha256.New, v.altchaKey(a))
	m.Write([]byte(challenge))
	return hex.EncodeToString(m.Sum(nil))
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// NewChallenge issues a challenge of a's ALTCHA captcha, good until
// now plus its expires.
func (v *Verifier) NewChallenge(a *actions.Action, now time.Time) (Challenge, error) {
	c := a.Captcha
	n, err := rand.Int(rand.Reader, big.NewInt(c.MaxNumber+1))
	if err != nil {
		return Challenge{}, err
	}
	params := url.Values{"expires": {strconv.FormatInt(now.Add(c.Expires).Unix(), 10)}, "action": {a.Name}}
	salt := rand.Text() + "?" + params.Encode()
	challenge := hashHex(salt + n.String())
	return Challenge{Algorithm: AltchaAlgorithm, Challenge: challenge, MaxNumber: c.MaxNumber, Salt: salt, Signature: v.sign(a, challenge)}, nil
}

// verifyAltcha checks a widget's payload: formq's signature for this
// action, the salt's action and expiry, the work itself; then spends it.
func (v *Verifier) verifyAltcha(ctx context.Context, a *actions.Action, payload string, now time.Time) error {
	invalid := &Refusal{Message: "The challenge answer is not valid; complete it again.", Codes: "invalid-solution (altcha)"}
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return invalid
	}
	var s AltchaSolution
	if err := json.Unmarshal(raw, &s); err != nil || s.Algorithm != AltchaAlgorithm || s.Number < 0 || s.Number > a.Captcha.MaxNumber {
		return invalid
	}
	if !hmac.Equal([]byte(s.Signature), []byte(v.sign(a, s.Challenge))) {
		invalid.Codes = "invalid-signature (altcha): another action's challenge, or not formq's"
		return invalid
	}
	_, query, _ := strings.Cut(s.Salt, "?")
	params, err := url.ParseQuery(query)
	if err != nil || params.Get("action") != a.Name {
		invalid.Codes = "wrong-action (altcha)"
		return invalid
	}
	expires, err := strconv.ParseInt(params.Get("expires"), 10, 64)
	if err != nil || now.Unix() > expires {
		return &Refusal{Message: "The challenge expired or was already used; complete it again.", Codes: "expired (altcha)"}
	}
	if !hmac.Equal([]byte(hashHex(s.Salt+strconv.FormatInt(s.Number, 10))), []byte(s.Challenge)) {
		invalid.Codes = "wrong-number (altcha)"
		return invalid
	}
	// Spent for as long as the challenge could still be sent.
	return v.claim(ctx, a.Captcha, s.Signature, time.Until(time.Unix(expires, 0))+time.Second)
}

// Challenge handles GET /actions/{name}/challenge: a new ALTCHA challenge
// of the action, never cached. Actions without an altcha captcha: 404.
func (v *Verifier) Challenge(c echo.Context) error {
	web.JSONErrors(c)
	a, ok := v.actions.Get(c.Param("name"))
	if !ok {
		return web.ErrActionNotFound
	}
	if a.Captcha == nil || !a.Captcha.IsAltcha() {
		return web.ErrNotFound.With(nil, "This action has no ALTCHA captcha.")
	}
	ch, err := v.NewChallenge(a, time.Now())
	if err != nil {
		return web.ErrInternal.With(err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, ch)
}

// Solve finds the number of a challenge by trying each in turn, as a bot
// would, and returns the widget's payload for it; false when no number up
// to maxnumber fits. Tests and the cost benchmark use it.
func Solve(ch Challenge) (string, bool) {
	want, err := hex.DecodeString(ch.Challenge)
	if err != nil {
		return "", false
	}
	buf := []byte(ch.Salt)
	for n := int64(0); n <= ch.MaxNumber; n++ {
		if sum := sha256.Sum256(strconv.AppendInt(buf[:len(ch.Salt)], n, 10)); string(sum[:]) == string(want) {
			b, _ := json.Marshal(AltchaSolution{Algorithm: ch.Algorithm, Challenge: ch.Challenge, Number: n, Salt: ch.Salt, Signature: ch.Signature})
			return base64.StdEncoding.EncodeToString(b), true
		}
	}
	return "", false
}
