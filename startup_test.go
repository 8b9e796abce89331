package formq_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/formq/formq/internal/testenv"
)

// webhookActions declares a webhook step whose secret is read from
// STARTUP_HOOK_SECRET.
const webhookActions = `actions:
  sign-up:
    fields:
      email: {type: email, required: true}
    steps:
      - webhook: {url: "https://hooks.example.com/sign-up", secret_env: STARTUP_HOOK_SECRET}
`

// unknownStepActions declares a step type nothing provides.
const unknownStepActions = `actions:
  sign-up:
    fields:
      email: {type: email, required: true}
    steps:
      - fax: {to: "+15550100"}
`

// TestStartupFailuresSayWhyInOneLine starts the built api and worker
// binaries, as an operator would, with one thing wrong each time: each
// exits 1 and prints the reason on one line of stderr, never a panic or a
// stack trace.
func TestStartupFailuresSayWhyInOneLine(t *testing.T) {
	api := testenv.Build(t, "", "./cmd/api")
	worker := testenv.Build(t, "", "./cmd/worker")
	r := testenv.StartRedis(t)
	s3 := testenv.StartS3(t)
	closed := closedAddr(t)

	write := func(t *testing.T, body string) string {
		p := filepath.Join(t.TempDir(), "actions.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// env is a complete, working development environment with changes.
	env := func(t *testing.T, actions string, change map[string]string) []string {
		m := map[string]string{
			"FORMQ_ENV":              "development",
			"FORMQ_ADDR":             "127.0.0.1:0",
			"FORMQ_REDIS_URL":        r.URL(),
			"FORMQ_S3_CREATE_BUCKET": "true",
			"FORMQ_ACTIONS":          actions,
			"STARTUP_HOOK_SECRET":    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		}
		for k, v := range s3.Env() {
			m[k] = v
		}
		for k, v := range change {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		var out []string
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		return out
	}

	for _, tc := range []struct {
		name    string
		bins    []string
		actions string
		change  map[string]string
		want    *regexp.Regexp // the one line, after "formq NAME: "
	}{
		{"redis unreachable", []string{api, worker}, webhookActions,
			map[string]string{"FORMQ_REDIS_URL": "redis://" + closed + "/0"},
			regexp.MustCompile(`^redis at ` + regexp.QuoteMeta(closed) + ` is not reachable: .*connection refused$`)},
		{"s3 unreachable", []string{api, worker}, webhookActions,
			map[string]string{"FORMQ_S3_ENDPOINT": "http://" + closed, "FORMQ_S3_CREATE_BUCKET": "false"},
			regexp.MustCompile(`^S3 bucket "[^"]+" is not reachable \(FORMQ_S3_BUCKET, FORMQ_S3_ENDPOINT\): .*connection refused`)},
		{"missing step secret", []string{worker}, webhookActions,
			map[string]string{"STARTUP_HOOK_SECRET": ""},
			regexp.MustCompile(`actions\.yaml:\d+: action "sign-up": step "webhook": secret_env STARTUP_HOOK_SECRET: not set in this environment`)},
		{"unknown step type", []string{api, worker}, unknownStepActions, nil,
			regexp.MustCompile(`actions\.yaml:\d+: action "sign-up": step "fax": unknown step type`)},
	} {
		for _, bin := range tc.bins {
			name := filepath.Base(bin)
			t.Run(name+" with "+tc.name, func(t *testing.T) {
				res := execute(t, t.TempDir(), env(t, write(t, tc.actions), tc.change), bin)
				if res.code != 1 {
					t.Errorf("exit %d, want 1", res.code)
				}
				if strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine ") {
					t.Fatalf("stderr has a panic or stack trace:\n%s", res.stderr)
				}
				lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
				if len(lines) != 1 {
					t.Fatalf("stderr has %d lines, want the reason on one:\n%s", len(lines), res.stderr)
				}
				prefix := "formq " + name + ": "
				if !strings.HasPrefix(lines[0], prefix) || !tc.want.MatchString(strings.TrimPrefix(lines[0], prefix)) {
					t.Errorf("stderr %q, want %q then to match %s", lines[0], prefix, tc.want)
				}
			})
		}
	}

	// The API does not run steps, so a missing secret does not stop it;
	// `api check` run where the worker runs says so before it starts.
	t.Run("api check names a missing step secret", func(t *testing.T) {
		file := write(t, webhookActions)
		res := execute(t, "", env(t, file, map[string]string{"STARTUP_HOOK_SECRET": ""}), api, "check", file)
		want := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `:\d+: action "sign-up": step "webhook": secret_env STARTUP_HOOK_SECRET: not set in this environment`)
		if res.code != 1 || !want.MatchString(res.stdout) {
			t.Errorf("exit %d, stdout %q; want 1 and a line matching %s", res.code, res.stdout, want)
		}
		res = execute(t, "", env(t, file, nil), api, "check", file)
		if res.code != 0 || !strings.HasSuffix(res.stdout, ": ok\n") {
			t.Errorf("with the secret set: exit %d, stdout %q, stderr %q; want 0 and ok", res.code, res.stdout, res.stderr)
		}
	})
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
