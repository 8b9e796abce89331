// Package conformance holds formq to tools nobody here wrote: Redocly's
// linter over the OpenAPI document, ajv (strict, draft 2020-12) over the
// JSON Schemas, the standardwebhooks library over real webhook
// deliveries, tus-js-client against the resumable uploads and tsc over
// the TypeScript types; it also pins the ALTCHA widget formq serves. The tools are npm packages pinned by
// package-lock.json in this directory; Install runs `npm ci` once per
// lockfile (node_modules is kept between runs and never committed), and
// the tests of this package, run by `make test`, drive them against a
// real stack.
package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
)

// Tools is this directory with its npm packages installed.
type Tools struct {
	// Dir is internal/conformance of the repository: package.json,
	// node_modules and the scripts the tests run.
	Dir string
}

// stamp, in node_modules, holds the SHA-256 of the package-lock.json that
// node_modules was installed from, so an unchanged lockfile costs no
// install.
const stamp = ".formq-lock-sha256"

// Install returns the tools, running `npm ci` first when node_modules is
// missing or was installed from another lockfile. Concurrent test
// processes wait for one another on a file lock. It fails the test, in
// one line, when Node.js or npm is missing.
func Install(t testing.TB) *Tools {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "internal", "conformance")
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed: the conformance checks need Node.js 20 or later with npm (make install installs them)", bin)
		}
	}
	out, _ := exec.Command("node", "--version").Output()
	major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < 20 {
		t.Fatalf("node %q: the conformance checks need Node.js 20 or later", strings.TrimSpace(string(out)))
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])

	// One install at a time across the test processes of `go test ./...`.
	lf, err := os.OpenFile(filepath.Join(os.TempDir(), "formq-conformance-"+fmt.Sprintf("%x", sha256.Sum256([]byte(dir)))[:16]+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close() // closing releases the lock
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	if got, _ := os.ReadFile(filepath.Join(dir, "node_modules", stamp)); string(got) == want {
		return &Tools{Dir: dir}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	cmd.Env = env()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "node_modules", stamp), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("npm ci: %s", time.Since(start).Round(100*time.Millisecond))
	return &Tools{Dir: dir}
}

// env is the environment of the tools: no colours, no update notices and
// no telemetry (the tests reach no network but the stack's).
func env() []string {
	return append(os.Environ(),
		"NO_COLOR=1", "FORCE_COLOR=0", "NO_UPDATE_NOTIFIER=1", "NPM_CONFIG_UPDATE_NOTIFIER=false",
		"REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
}

// Result is what a tool printed and how it ended.
type Result struct {
	Stdout, Stderr []byte
	Err            error // nil when the tool exited 0
}

// Run runs a tool's command (an npm package's bin, such as "redocly" or
// "tsc") or, for a name ending in .mjs, one of this directory's scripts
// with node, in dir (Tools.Dir when empty), with stdin as its input. It
// fails the test only when the tool cannot be started or runs past two
// minutes; its exit status is the caller's to judge.
func (tl *Tools) Run(t testing.TB, dir string, stdin []byte, name string, args ...string) Result {
	t.Helper()
	if dir == "" {
		dir = tl.Dir
	}
	path := filepath.Join(tl.Dir, "node_modules", ".bin", name)
	if strings.HasSuffix(name, ".mjs") {
		path, args = "node", append([]string{filepath.Join(tl.Dir, name)}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Env = env()
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after 2 minutes\n%s%s", name, strings.Join(args, " "), stdout.Bytes(), stderr.Bytes())
	}
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatalf("%s: %v", name, err)
	}
	return Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Err: err}
}

// String is the tool's output for a failure message.
func (r Result) String() string {
	return fmt.Sprintf("%s%s", r.Stdout, r.Stderr)
}
