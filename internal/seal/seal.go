// Package seal makes tamper-proof, expiring tokens: bound action arguments
// and upload references are sealed with AES-256-GCM under keys derived
// from FORMQ_SECRET, so a client can carry them but neither read nor change
// them. Several secrets may be configured for rotation: the first seals,
// every one opens.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of Open.
var (
	ErrInvalid = errors.New("seal: token invalid or tampered with")
	ErrExpired = errors.New("seal: token expired")
)

const version = 1

// Sealer seals and opens tokens.
type Sealer struct {
	keys []cipher.AEAD
	now  func() time.Time
}

// New builds a Sealer from one secret or a comma list (newest first).
func New(secrets string) (*Sealer, error) {
	s := &Sealer{now: time.Now}
	for sec := range strings.SplitSeq(secrets, ",") {
		sec = strings.TrimSpace(sec)
		if sec == "" {
			continue
		}
		key, err := hkdf.Key(sha256.New, []byte(sec), nil, "formq seal v1", 32)
		if err != nil {
			return nil, fmt.Errorf("seal: derive key: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, aead)
	}
	if len(s.keys) == 0 {
		return nil, errors.New("seal: no secret")
	}
	return s, nil
}

// NewRandom builds a Sealer with a random key of this process alone:
// nobody else knows it, and its tokens stop opening when the process
// ends. It serves a development API run without FORMQ_SECRET.
func NewRandom() (*Sealer, error) {
	return New(rand.Text()) // 26 base32 characters, 130 random bits
}

// WithClock returns a copy reading time from now, for tests.
func (s *Sealer) WithClock(now func() time.Time) *Sealer {
	c := *s
	c.now = now
	return &c
}

type envelope struct {
	Exp  int64           `json:"e"`
	Data json.RawMessage `json:"d"`
}

// Seal encodes v as a token for purpose, valid for ttl. The purpose is
// authenticated: a token sealed for one purpose never opens for another.
func (s *Sealer) Seal(purpose string, v any, ttl time.Duration) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("seal: encode: %w", err)
	}
	plain, err := json.Marshal(envelope{Exp: s.now().Add(ttl).Unix(), Data: data})
	if err != nil {
		return "", err
	}
	aead := s.keys[0]
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return "", err
	}
	out = aead.Seal(out, out[1:1+aead.NonceSize()], plain, []byte(purpose))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// Open checks a token for purpose and decodes its value into v. A token
// has one spelling only (strict base64: no other last character for the
// same bytes), so single-use claims keyed by a token's text, such as the
// render stamps', cannot be renewed by respelling it.
func (s *Sealer) Open(purpose, token string, v any) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < 1 || raw[0] != version {
		return ErrInvalid
	}
	for _, aead := range s.keys {
		if len(raw) < 1+aead.NonceSize()+aead.Overhead() {
			return ErrInvalid
		}
		nonce := raw[1 : 1+aead.NonceSize()]
		plain, err := aead.Open(nil, nonce, raw[1+aead.NonceSize():], []byte(purpose))
		if err != nil {
			continue
		}
		var env envelope
		if err := json.Unmarshal(plain, &env); err != nil {
			return ErrInvalid
		}
		if s.now().Unix() > env.Exp {
			return ErrExpired
		}
		if err := json.Unmarshal(env.Data, v); err != nil {
			return ErrInvalid
		}
		return nil
	}
	return ErrInvalid
}
