package conformance_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/conformance"
	"github.com/formq/formq/internal/testenv"
)

// tsconfig is what the checks compile with: strict, for a bundler, with
// the DOM (the browser client and fetch's Request and Response).
const tsconfig = `{
  "compilerOptions": {
    "strict": true, "noEmit": true, "target": "es2022", "module": "esnext",
    "moduleResolution": "bundler", "lib": ["es2022", "dom", "dom.iterable"],
    "types": [], "skipLibCheck": false, "exactOptionalPropertyTypes": false
  },
  "include": ["*.ts"]
}
`

// tsc runs tsc --strict over the .ts files of dir (with tsconfig) and
// fails the test with its errors.
func tsc(t *testing.T, tl *conformance.Tools, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "tsconfig.json"), []byte(tsconfig), 0o644); err != nil {
		t.Fatal(err)
	}
	res := tl.Run(t, dir, nil, "tsc", "-p", dir)
	if res.Err != nil {
		t.Fatalf("tsc --strict: %v\n%s", res.Err, res)
	}
}

// writeTypes writes what `api types file` prints to dir/name.
func writeTypes(t *testing.T, file, dir, name string) {
	t.Helper()
	var out bytes.Buffer
	if err := api.TypesFile(file, &out); err != nil {
		t.Fatalf("api types %s: %v", file, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestActionTypesCompile: `api types` of every actions file of the
// repository that loads (examples included) passes tsc --strict, and code
// written against the types of testdata/actions.yaml (testdata/types/
// check.ts: a route handler receiving the webhook and answering, a form's
// values, the status) compiles while the mistakes it marks
// @ts-expect-error are refused.
func TestActionTypesCompile(t *testing.T) {
	tl := conformance.Install(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := slices.Sorted(maps.Keys(actionsFiles(t)))
	examples, _ := filepath.Glob(filepath.Join(root, "examples", "*", "*actions.yaml"))
	examples2, _ := filepath.Glob(filepath.Join(root, "examples", "*", "*", "actions.yaml"))
	for _, p := range append(examples, examples2...) {
		rel, _ := filepath.Rel(root, p)
		paths = append(paths, rel)
	}
	n, acts := 0, 0
	for _, rel := range paths {
		list, err := actions.LoadFile(filepath.Join(root, rel))
		if err != nil {
			continue // files the API refuses on purpose
		}
		writeTypes(t, filepath.Join(root, rel), dir, fmt.Sprintf("file%02d.ts", n))
		n, acts = n+1, acts+len(list)
	}
	writeTypes(t, filepath.Join(tl.Dir, "testdata", "actions.yaml"), dir, "actions.ts")
	check, err := os.ReadFile(filepath.Join(tl.Dir, "testdata", "types", "check.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "check.ts"), check, 0o644); err != nil {
		t.Fatal(err)
	}
	tsc(t, tl, dir)
	t.Logf("tsc --strict: the types of %d actions files (%d actions) and check.ts compile", n, acts)

	// Without a @ts-expect-error line, its mistake must be an error.
	broken := strings.Replace(string(check), "// @ts-expect-error plan is free or pro\n", "", 1)
	if broken == string(check) {
		t.Fatal("check.ts has no @ts-expect-error for plan")
	}
	if err := os.WriteFile(filepath.Join(dir, "check.ts"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := tl.Run(t, dir, nil, "tsc", "-p", dir); res.Err == nil || !strings.Contains(res.String(), `"gold"`) {
		t.Errorf("tsc took a plan of \"gold\": %s", res)
	}
}

// TestClientPackage: client/ packs with npm pack, installs from the
// tarball, and with it the README's TypeScript snippets compile as
// written (beside the types `api types` writes of the demo's actions
// file, as the README says), and testdata/types/drift.ts holds
// client/formq.d.ts and formq-react.d.ts (imported as @formq/client and
// @formq/client/react) to the OpenAPI document's answers.
func TestClientPackage(t *testing.T) {
	tl := conformance.Install(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pack := exec.Command("npm", "pack", "--pack-destination", dir, "--json")
	pack.Dir = filepath.Join(root, "client")
	out, err := pack.Output()
	if err != nil {
		t.Fatalf("npm pack in client/: %v\n%s", err, out)
	}
	tarballs, _ := filepath.Glob(filepath.Join(dir, "formq-client-*.tgz"))
	if len(tarballs) != 1 {
		t.Fatalf("npm pack made %v:\n%s", tarballs, out)
	}
	for _, want := range []string{`"formq.js"`, `"formq.d.ts"`, `"formq-tus.js"`, `"formq-react.js"`, `"formq-react.d.ts"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the package lacks %s:\n%s", want, out)
		}
	}
	app := filepath.Join(dir, "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "package.json"), []byte(`{"name": "app", "private": true, "type": "module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	install := exec.Command("npm", "install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarballs[0])
	install.Dir = app
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install %s: %v\n%s", filepath.Base(tarballs[0]), err, out)
	}

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	snippets := regexp.MustCompile("(?s)```ts\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(snippets) == 0 {
		t.Fatal("README.md has no ```ts snippet")
	}
	for i, s := range snippets {
		if err := os.WriteFile(filepath.Join(app, fmt.Sprintf("readme%d.ts", i)), s[1], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The README writes the demo's types to src/formq-actions.ts beside the code.
	writeTypes(t, filepath.Join(root, "deployments", "local", "actions.yaml"), app, "formq-actions.ts")
	writeTypes(t, filepath.Join(root, "deployments", "local", "actions.yaml"), app, "actions.ts")
	drift, err := os.ReadFile(filepath.Join(tl.Dir, "testdata", "types", "drift.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "drift.ts"), drift, 0o644); err != nil {
		t.Fatal(err)
	}
	tsc(t, tl, app)
	t.Logf("npm pack: %s; tsc --strict: %d README snippet(s) and drift.ts compile against it", filepath.Base(tarballs[0]), len(snippets))
}
