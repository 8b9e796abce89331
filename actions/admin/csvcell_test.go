package admin

import "testing"

// TestCSVCellEscapesFormulasAfterBlanks: a spreadsheet skips leading
// spaces and line breaks before it reads a formula, so a value like
// " =1+1" or "\n=HYPERLINK(...)" runs as one unless escaped too; plain
// text, numbers and inner signs stay as they are.
func TestCSVCellEscapesFormulasAfterBlanks(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", " =1+1": "' =1+1", "\n=1+1": "'\n=1+1", "  \r\n@SUM(A1)": "'  \r\n@SUM(A1)",
		"\t+1": "'\t+1", " -2": "' -2", "hello": "hello", "a=b": "a=b", "  ": "  ", "": "", "42": "42",
	} {
		if got := CSVCell(in); got != want {
			t.Errorf("CSVCell(%q) = %q, want %q", in, got, want)
		}
	}
}
