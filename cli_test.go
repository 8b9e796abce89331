package formq_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/formq/formq/internal/testenv"
)

// Stamped into the binaries the way `make build` stamps them.
const (
	testVersion = "v9.8.7-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	ldflags     = "-X github.com/formq/formq/internal/buildinfo.Version=" + testVersion +
		" -X github.com/formq/formq/internal/buildinfo.Commit=" + testCommit
)

type result struct {
	stdout, stderr string
	code           int
}

// execute runs bin with args in dir (the repository when empty) and env
// exactly (nil: an empty environment).
func execute(t *testing.T, dir string, env []string, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{}, env...) // never nil: nil would pass ours on
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// brokenActions has seven problems; each is listed with the line the
// check must name: the line of the key the problem is about.
const brokenActions = `actions:
  sign-up:
    fields:
      name: {type: txt, required: true}
      age: {type: integer, min: 10, max: 5}
    steps:
      - email: {subject: "Welcome"}
      - fax: {to: "+15550100"}
    max_body: lots
  "bad name!":
    fields:
      email: {type: email}
    queue: someday
`

var brokenProblems = []string{
	`:9: action "sign-up": max_body "lots": want a size like 12MB`,
	`:7: action "sign-up": step "email": to: want an address`,
	`:8: action "sign-up": step "fax": unknown step type`,
	`:4: action "sign-up" field "name": type "txt": want one of text`,
	`:5: action "sign-up" field "age": min is over max`,
	`:10: action "bad name!": action name must be letters`,
	`:13: action "bad name!": queue "someday": want one of critical, default, low`,
}

// TestCommandLine runs the built api and worker binaries as an operator
// would: --help, --version, api check, and command lines they refuse.
func TestCommandLine(t *testing.T) {
	api := testenv.Build(t, "", "./cmd/api", "-ldflags", ldflags)
	worker := testenv.Build(t, "", "./cmd/worker", "-ldflags", ldflags)
	rows := docTable(t, docPath)

	for _, tc := range []struct{ bin, name, flag string }{
		{api, "api", "--help"}, {api, "api", "-h"}, {worker, "worker", "--help"}, {worker, "worker", "-h"},
	} {
		t.Run(tc.name+" "+tc.flag, func(t *testing.T) {
			empty := t.TempDir()
			r := execute(t, empty, nil, tc.bin, tc.flag)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing with an empty environment", r.code, r.stderr)
			}
			if left, _ := os.ReadDir(empty); len(left) > 0 {
				t.Errorf("--help wrote %v in its working directory", left)
			}
			if !strings.HasPrefix(r.stdout, "Usage:\n  "+tc.name) {
				t.Errorf("help does not start with its usage:\n%s", r.stdout)
			}
			if tc.name == "api" {
				for _, sub := range []string{"api [serve]", "api bind -action", "api check FILE", "api --version"} {
					if !strings.Contains(r.stdout, sub) {
						t.Errorf("api help lacks %q", sub)
					}
				}
			}
			// Every setting with its default and meaning, as the document
			// gives them (lines wrapped, backticks dropped).
			help := strings.Join(strings.Fields(r.stdout), " ")
			for _, name := range envNames(t) {
				row, ok := rows[name]
				if !ok {
					continue // TestConfigurationDocMatchesStruct names it
				}
				def := strings.ReplaceAll(row.def, "`", "")
				head := name + " (default: " + def + ")"
				if strings.HasPrefix(def, "(") {
					head = name + " " + def
				}
				meaning := strings.Join(strings.Fields(strings.ReplaceAll(row.meaning, "`", "")), " ")
				if !strings.Contains(help, head+" "+meaning) {
					t.Errorf("help lacks %q followed by the meaning in docs/configuration.md: %q", head, meaning)
				}
			}
		})
	}

	for _, tc := range []struct{ bin, name string }{{api, "api"}, {worker, "worker"}} {
		t.Run(tc.name+" --version", func(t *testing.T) {
			r := execute(t, t.TempDir(), nil, tc.bin, "--version")
			want := "formq " + tc.name + " " + testVersion + " (commit " + testCommit + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
			if r.code != 0 || r.stdout != want {
				t.Errorf("exit %d, stdout %q; want 0 and %q", r.code, r.stdout, want)
			}
		})
	}

	t.Run("--version without ldflags reads the VCS revision", func(t *testing.T) {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatalf("git rev-parse HEAD: %v (the test runs in a git checkout)", err)
		}
		plain := testenv.Build(t, "", "./cmd/api", "-buildvcs=true")
		r := execute(t, "", nil, plain, "--version")
		want := regexp.MustCompile(`^formq api dev \(commit ` + strings.TrimSpace(string(head)) + `(-dirty)?, go`)
		if fi, err := os.Stat(".git"); err == nil && !fi.IsDir() {
			// A git worktree: the go command records no VCS revision
			// there (it looks for a .git directory), so none is shown.
			want = regexp.MustCompile(`^formq api dev \(commit unknown, go`)
		}
		if r.code != 0 || !want.MatchString(r.stdout) {
			t.Errorf("exit %d, stdout %q; want 0 and to match %s", r.code, r.stdout, want)
		}
	})

	t.Run("api check on the demo's actions file", func(t *testing.T) {
		// The environment the demo's worker runs with (its email steps
		// log under the development mailer).
		r := execute(t, "", []string{"FORMQ_ENV=development"}, api, "check", "deployments/local/actions.yaml")
		want := regexp.MustCompile(`^deployments/local/actions.yaml: \d+ actions?, \d+ upload profiles?, \d+ steps?: ok\n$`)
		if r.code != 0 || !want.MatchString(r.stdout) || r.stderr != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and a summary", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("api check counts what a file declares", func(t *testing.T) {
		// The environment a worker would need for its steps: a mail
		// server and the webhook's secret.
		env := []string{"FORMQ_SMTP_URL=smtp://127.0.0.1:2525", "SIGNUP_HOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
		r := execute(t, "", env, api, "check", "testdata/check-actions.yaml")
		want := "testdata/check-actions.yaml: 2 actions, 1 upload profile, 3 steps: ok\n"
		if r.code != 0 || r.stdout != want {
			t.Errorf("exit %d, stdout %q; want 0 and %q", r.code, r.stdout, want)
		}
	})

	t.Run("api check lists every problem with its line", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "broken.yaml")
		if err := os.WriteFile(file, []byte(brokenActions), 0o644); err != nil {
			t.Fatal(err)
		}
		// With a mail server, so every problem is one of the file's.
		r := execute(t, "", []string{"FORMQ_ENV=development"}, api, "check", file)
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != len(brokenProblems) {
			t.Errorf("%d lines, want %d problems:\n%s", len(lines), len(brokenProblems), r.stdout)
		}
		for _, want := range brokenProblems {
			if !strings.Contains(r.stdout, file+want) {
				t.Errorf("output lacks %s%s:\n%s", file, want, r.stdout)
			}
		}
		if want := "formq api: " + file + ": 7 problems\n"; r.stderr != want {
			t.Errorf("stderr %q, want %q", r.stderr, want)
		}
	})

	t.Run("api check names a digest without a mail server", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "digest.yaml")
		if err := os.WriteFile(file, []byte("actions:\n  contact:\n    fields:\n      email: {type: email}\n    digest: {to: team@example.com, at: \"08:00\", timezone: Europe/Paris}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := execute(t, "", nil, api, "check", file)
		want := file + `: action "contact": digest: needs a mail server: set FORMQ_SMTP_URL (the worker does not start without one)` + "\n"
		if r.code != 1 || r.stdout != want || r.stderr != "formq api: "+file+": 1 problem\n" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", r.code, r.stdout, r.stderr, want)
		}
		r = execute(t, "", []string{"FORMQ_SMTP_URL=smtp://127.0.0.1:2525"}, api, "check", file)
		if r.code != 0 {
			t.Errorf("with a mail server: exit %d, stdout %q", r.code, r.stdout)
		}
	})

	t.Run("api check on a missing file", func(t *testing.T) {
		r := execute(t, "", nil, api, "check", "testdata/no-such-actions.yaml")
		if r.code != 1 || !strings.Contains(r.stderr, "no-such-actions.yaml") {
			t.Errorf("exit %d, stderr %q; want 1 naming the file", r.code, r.stderr)
		}
	})

	for _, tc := range []struct {
		bin  string
		args []string
	}{
		{api, []string{"--bogus"}}, {api, []string{"frobnicate"}}, {api, []string{"serve", "extra"}},
		{api, []string{"check"}}, {api, []string{"check", "a.yaml", "b.yaml"}}, {api, []string{"bind", "-bogus"}},
		{worker, []string{"--bogus"}}, {worker, []string{"serve"}},
	} {
		name := filepath.Base(tc.bin)
		t.Run(name+" "+strings.Join(tc.args, " ")+" is refused", func(t *testing.T) {
			r := execute(t, t.TempDir(), nil, tc.bin, tc.args...)
			if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "Usage:\n  "+name) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", r.code, r.stdout, r.stderr)
			}
		})
	}
}
