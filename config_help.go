package formq

import (
	_ "embed"
	"fmt"
	"io"
	"strings"
)

// configDoc is the configuration reference. PrintSettings prints its
// table, so the meanings users read in the docs and in --help are one text.
//
//go:embed docs/configuration.md
var configDoc string

// setting is one row of docs/configuration.md's table.
type setting struct{ Name, Default, Meaning string }

// settings returns the rows of the configuration reference's table in
// order: the variable, its default and its meaning, backticks dropped.
func settings() []setting {
	var out []setting
	plain := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "`", "") }
	for line := range strings.Lines(configDoc) {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`FORMQ_") {
			continue
		}
		out = append(out, setting{Name: plain(cells[1]), Default: plain(cells[2]), Meaning: plain(cells[3])})
	}
	return out
}

// PrintSettings writes every setting with its default and meaning, as the
// commands' --help shows them. It reads no environment, file or network.
func PrintSettings(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Settings, read from the environment (the API and the worker read the same;\n" +
		"docs/configuration.md has this list):\n")
	for _, s := range settings() {
		if strings.HasPrefix(s.Default, "(") { // (required)
			fmt.Fprintf(&b, "\n  %s %s\n", s.Name, s.Default)
		} else {
			fmt.Fprintf(&b, "\n  %s (default: %s)\n", s.Name, s.Default)
		}
		wrap(&b, s.Meaning, "      ", 80)
	}
	b.WriteString("\nSizes accept 5MB, 512KiB, 1GB or a byte count (1MB = 1 MiB); durations use\n" +
		"Go's syntax (25s, 1m30s). An empty variable counts as unset.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap writes text in lines of at most width columns, each indented.
func wrap(b *strings.Builder, text, indent string, width int) {
	col := 0
	for word := range strings.FieldsSeq(text) {
		switch {
		case col == 0:
			b.WriteString(indent)
			col = len(indent)
		case col+1+len(word) > width:
			b.WriteString("\n" + indent)
			col = len(indent)
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	b.WriteByte('\n')
}
