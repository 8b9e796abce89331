package captcha_test

import (
	"testing"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/captcha"
)

func altchaVerifier(b testing.TB) (*captcha.Verifier, *actions.Action) {
	b.Helper()
	list, err := actions.Parse("a.yaml", []byte("actions:\n  contact:\n    captcha: {provider: altcha, secret_env: ALTCHA_KEY}\n"))
	if err != nil {
		b.Fatal(err)
	}
	reg := actions.NewRegistry(list...)
	v, err := captcha.New(captcha.Config{Getenv: func(string) string { return "a-random-key-of-at-least-32-characters" }}, reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	a, _ := reg.Get("contact")
	return v, a
}

// BenchmarkAltchaSolveDefault is what a bot pays per post at the default
// difficulty (max_number 50,000): one Go solve on one core, trying
// numbers from 0 as a plain solver does. Its ns/op times 1,000 is the
// CPU time of 1,000 posts.
func BenchmarkAltchaSolveDefault(b *testing.B) {
	v, a := altchaVerifier(b)
	for b.Loop() {
		ch, err := v.NewChallenge(a, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := captcha.Solve(ch); !ok {
			b.Fatal("no solution")
		}
	}
}
