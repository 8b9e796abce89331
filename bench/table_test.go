package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// Row is one line of the table `make bench` prints: what formq did, the
// limit measured in the same run (raw asynq, a direct S3 request, ...), and
// their ratio. Benchmarks in this package add rows; TestMain prints them all
// at the end, so one run gives one table.
type Row struct {
	Group string // orders the table: "forms", "uploads", "worker", "events"
	Work  string // what was measured, e.g. "small valid form, c=16"

	Formq, Limit float64 // in Unit; Limit 0 when there is none
	Unit         string  // "acks/s", "MiB/s", "ms", ...
	LimitName    string  // what the limit is, e.g. "raw asynq Enqueue"

	// HigherIsBetter says how to read the ratio: formq/limit when true,
	// limit/formq when false (latencies).
	HigherIsBetter bool

	PeakRSS int64  // the API's VmHWM during the row, 0 when not measured
	Note    string // e.g. "median of 3 (range 5,900–6,400); 64 µs API CPU each"
}

var (
	rowsMu sync.Mutex
	rows   []Row
)

// AddRow records a row for the table.
func AddRow(r Row) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	rows = append(rows, r)
}

// Ratio is formq against its limit, as a percentage; 0 without a limit.
func (r Row) Ratio() float64 {
	if r.Limit == 0 || r.Formq == 0 {
		return 0
	}
	if r.HigherIsBetter {
		return r.Formq / r.Limit * 100
	}
	return r.Limit / r.Formq * 100
}

// PrintTable writes every recorded row as one Markdown table.
func PrintTable(w io.Writer) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) == 0 {
		return
	}
	order := map[string]int{"forms": 0, "uploads": 1, "worker": 2, "events": 3}
	sorted := append([]Row(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool { return order[sorted[i].Group] < order[sorted[j].Group] })

	fmt.Fprintf(w, "\nformq benchmark (%d CPUs; every limit measured in the same run)\n\n", runtimeCPUs())
	fmt.Fprintln(w, "| work | formq | limit (same run) | ratio | API peak RSS | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range sorted {
		limit, ratio := "–", "–"
		if r.Limit != 0 {
			limit = fmt.Sprintf("%s %s (%s)", num(r.Limit), r.Unit, r.LimitName)
			ratio = fmt.Sprintf("%.0f%%", r.Ratio())
		}
		rss := "–"
		if r.PeakRSS > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(r.PeakRSS)/(1<<20))
		}
		formq := "–"
		if r.Formq != 0 {
			formq = num(r.Formq) + " " + r.Unit
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.Work, formq, limit, ratio, rss, strings.ReplaceAll(r.Note, "|", "/"))
	}
	fmt.Fprintln(w)
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
