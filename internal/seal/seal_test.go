package seal

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

const secretA = "0123456789abcdef0123456789abcdef-a"
const secretB = "0123456789abcdef0123456789abcdef-b"

func TestSealOpen(t *testing.T) {
	s, err := New(secretA)
	if err != nil {
		t.Fatal(err)
	}
	type args struct {
		UserID string `json:"userId"`
	}
	tok, err := s.Seal("bound:update-user", args{"42"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var got args
	if err := s.Open("bound:update-user", tok, &got); err != nil || got.UserID != "42" {
		t.Fatalf("open = %v, %+v", err, got)
	}

	tests := []struct {
		name    string
		purpose string
		token   string
		want    error
	}{
		{"other purpose", "bound:delete-user", tok, ErrInvalid},
		{"flipped byte", "bound:update-user", flip(tok), ErrInvalid},
		{"truncated", "bound:update-user", tok[:len(tok)-4], ErrInvalid},
		{"garbage", "bound:update-user", "not-a-token!", ErrInvalid},
		{"empty", "bound:update-user", "", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v args
			if err := s.Open(tc.purpose, tc.token, &v); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func flip(tok string) string {
	b := []byte(tok)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestExpiry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, _ := New(secretA)
	s = s.WithClock(func() time.Time { return now })
	tok, _ := s.Seal("p", "v", time.Minute)
	now = now.Add(2 * time.Minute)
	var v string
	if err := s.Open("p", tok, &v); !errors.Is(err, ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired", err)
	}
}

func TestRotation(t *testing.T) {
	old, _ := New(secretA)
	tok, _ := old.Seal("p", "v", time.Hour)
	rotated, _ := New(secretB + "," + secretA)
	var v string
	if err := rotated.Open("p", tok, &v); err != nil || v != "v" {
		t.Fatalf("a token of the old secret must open after rotation: %v", err)
	}
	fresh, _ := rotated.Seal("p", "w", time.Hour)
	onlyOld, _ := New(secretA)
	if err := onlyOld.Open("p", fresh, &v); !errors.Is(err, ErrInvalid) {
		t.Fatalf("new tokens are sealed with the first secret; err = %v", err)
	}
	if strings.Contains(fresh, "w") && len(fresh) < 20 {
		t.Fatal("token too short to be sealed")
	}
}

// A development API without FORMQ_SECRET seals with a random key: its own
// tokens open, another process's (another random key) never do.
func TestRandomKeyIsOwnPerSealer(t *testing.T) {
	a, err := NewRandom()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRandom()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Seal("upload", "ref", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := a.Open("upload", tok, &got); err != nil || got != "ref" {
		t.Fatalf("own token: %v, %q", err, got)
	}
	if err := b.Open("upload", tok, &got); !errors.Is(err, ErrInvalid) {
		t.Fatalf("another random key opened the token: %v", err)
	}
}

// TestOneSpellingPerToken: a token whose last base64 character carries
// unused bits does not open when those bits are set otherwise, though a
// lenient decoder reads the same bytes from it.
func TestOneSpellingPerToken(t *testing.T) {
	s, err := New(secretA)
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for n := range 3 {
		tok, err := s.Seal("stamp", strings.Repeat("x", n), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok)%4 == 0 {
			continue // no unused bits: one spelling anyway
		}
		last := strings.IndexByte(alphabet, tok[len(tok)-1])
		other := tok[:len(tok)-1] + string(alphabet[last^1])
		a, errA := base64.RawURLEncoding.DecodeString(tok)
		b, errB := base64.RawURLEncoding.DecodeString(other)
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Fatalf("%q and %q are not two spellings of the same bytes", tok, other)
		}
		var v string
		if err := s.Open("stamp", tok, &v); err != nil {
			t.Fatalf("the token itself: %v", err)
		}
		if err := s.Open("stamp", other, &v); !errors.Is(err, ErrInvalid) {
			t.Errorf("another spelling of the token opened: %v", err)
		}
		return
	}
	t.Fatal("no sealed token had unused bits in its last character")
}
