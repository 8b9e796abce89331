package conformance_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/formq/formq/internal/conformance"
)

// TestAltchaWidgetIsThePinnedPackage: the ALTCHA widget formq serves at
// /altcha/ is the npm package altcha at the version package-lock.json
// pins, byte for byte (its external build, stylesheet, SHA-256 worker and
// licence): upgrading the widget is bumping the pin and copying the files.
func TestAltchaWidgetIsThePinnedPackage(t *testing.T) {
	tl := conformance.Install(t)
	pkg := filepath.Join(tl.Dir, "node_modules", "altcha")
	var meta struct{ Version string }
	raw, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err != nil || json.Unmarshal(raw, &meta) != nil || meta.Version != "3.2.2" {
		t.Fatalf("node_modules/altcha: version %q, %v", meta.Version, err)
	}
	served := filepath.Join("..", "..", "actions", "pages", "altcha")
	for file, from := range map[string]string{
		"altcha.js":   "dist/external/altcha.min.js",
		"altcha.css":  "dist/external/altcha.css",
		"sha.js":      "dist/workers/sha.js",
		"LICENSE.txt": "LICENSE.txt",
	} {
		want, err := os.ReadFile(filepath.Join(pkg, from))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(served, file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("actions/pages/altcha/%s is not altcha@%s's %s: copy it again", file, meta.Version, from)
		}
	}
}
