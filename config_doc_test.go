package formq_test

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"runtime"
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
	for _, f := range reflect.VisibleFields(typ) {
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

// docRow is one setting's row: its default and meaning cells.
type docRow struct{ def, meaning string }

// docTable returns the rows of the document's table by setting name.
func docTable(t *testing.T, path string) map[string]docRow {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	rows := map[string]docRow{}
	for line := range strings.Lines(string(data)) {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) < 4 {
			continue
		}
		if m := docName.FindStringSubmatch(cells[1]); m != nil {
			rows[m[1]] = docRow{def: strings.TrimSpace(cells[2]), meaning: strings.TrimSpace(cells[3])}
		}
	}
	return rows
}

// describedDefaults are the defaults the document describes in words
// rather than as a value; every other default is either a value in
// backticks or a zero value ("empty", "(required)", "derived from ...").
var describedDefaults = map[string]any{"FORMQ_WORKER_CONCURRENCY": 4 * runtime.NumCPU()}

// TestConfigurationDocDefaults holds the document's default column to the
// code: a default in backticks, set explicitly, must change nothing, and a
// default in words must be the field's zero value (or one listed above).
func TestConfigurationDocDefaults(t *testing.T) {
	base := map[string]string{"FORMQ_S3_BUCKET": "b", "FORMQ_SECRET": strings.Repeat("k", 32)}
	load := func(extra map[string]string) formq.Config {
		t.Helper()
		c, err := formq.LoadConfig(func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	defaults := load(nil)
	value := reflect.ValueOf(formq.DefaultConfig())
	valueCell := regexp.MustCompile("^`([^`]*)`$")
	rows := docTable(t, docPath)
	for _, f := range reflect.VisibleFields(reflect.TypeFor[formq.Config]()) {
		name := f.Tag.Get("env")
		row, ok := rows[name]
		if !ok {
			continue // TestConfigurationDocMatchesStruct names it
		}
		field := value.FieldByIndex(f.Index)
		switch m := valueCell.FindStringSubmatch(row.def); {
		case describedDefaults[name] != nil:
			if !reflect.DeepEqual(field.Interface(), describedDefaults[name]) {
				t.Errorf("%s: default %v, want %v (%s)", name, field.Interface(), describedDefaults[name], row.def)
			}
		case m != nil:
			if got := load(map[string]string{name: m[1]}); !reflect.DeepEqual(got, defaults) {
				t.Errorf("%s: the document's default %s is not the default (%v)", name, row.def, field.Interface())
			}
		case !field.IsZero():
			t.Errorf("%s: the document says %q but the default is %v; put it in backticks", name, row.def, field.Interface())
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
