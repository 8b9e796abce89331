package formq_test

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/formq/formq"
)

// docPath is the configuration reference, relative to this package.
const docPath = "docs/configuration.md"

// EnvNames lists the env tags of formq.Config in field order: the names
// the processes read.
func envNames(t *testing.T) []string {
	t.Helper()
	var names []string
	typ := reflect.TypeFor[formq.Config]()
	for f := range typ.Fields() {
		if name, ok := f.Tag.Lookup("env"); ok && name != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		t.Fatal("formq.Config has no env tags")
	}
	return names
}

var docName = regexp.MustCompile("`(FORMQ_[A-Z0-9_]+)`")

// docRows returns the FORMQ_* names in the first column of every table row
// of the document, with how often each appears.
func docRows(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	rows := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		for _, m := range docName.FindAllStringSubmatch(cells[1], -1) {
			rows[m[1]]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return rows
}

// TestConfigurationDocMatchesStruct keeps docs/configuration.md in step
// with the settings the code reads: a setting without a row, a row
// without a setting, or a setting listed twice fails.
func TestConfigurationDocMatchesStruct(t *testing.T) {
	names := envNames(t)
	rows := docRows(t, docPath)
	for _, name := range names {
		switch rows[name] {
		case 0:
			t.Errorf("%s is read by formq.Config but has no row in docs/configuration.md", name)
		case 1:
		default:
			t.Errorf("%s has %d rows in docs/configuration.md, want 1", name, rows[name])
		}
	}
	for name := range rows {
		if !slices.Contains(names, name) {
			t.Errorf("docs/configuration.md lists %s but formq.Config has no field with env:%q", name, name)
		}
	}
}

// TestDocRowsParser checks the row parser on a fixture, so that the test
// above cannot pass by reading nothing.
func TestDocRowsParser(t *testing.T) {
	got := docRows(t, "testdata/configuration_fixture.md")
	want := map[string]int{"FORMQ_A": 1, "FORMQ_B": 1, "FORMQ_C": 1, "FORMQ_DUP": 2}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("docRows = %v, want %v", got, want)
	}
}
