package client_test

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// TestInboxExportsTheSelection: in the inbox, signed in with the browser's
// Basic login, two of three rows selected and "Export CSV" clicked: the
// browser downloads a CSV of exactly those two submissions, and stays on
// the list.
func TestInboxExportsTheSelection(t *testing.T) {
	s := startSite(t)
	ids := signups(t, s)
	u := signedIn(s)
	ctx := tab(t)
	dir := t.TempDir()
	downloads := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
	run(t, ctx, chromedp.Navigate(u.String()+"/admin/inbox"), chromedp.WaitVisible(chromedp.CSS("tbody tr")),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true)})
			return err
		}),
		chromedp.Click(chromedp.CSS("#s-"+ids["ada@example.com"])), chromedp.Click(chromedp.CSS("#s-"+ids["margaret@example.com"])))
	screenshot(t, ctx, "inbox-selection")
	run(t, ctx, chromedp.Click(chromedp.CSS(`button[value="export-csv"]`)))
	var file string
	for ev, err := range downloads {
		if err != nil {
			t.Fatal(err)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			file = filepath.Join(dir, ev.GUID)
			break
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			t.Fatal("the export's download was cancelled")
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "id" {
		t.Fatalf("the downloaded CSV: %v\n%s", err, data)
	}
	got := []string{rows[1][0], rows[2][0]}
	if want := []string{ids["margaret@example.com"], ids["ada@example.com"]}; !slices.Equal(got, want) {
		t.Errorf("the export holds %v, want the two selected, newest first: %v\n%s", got, want, data)
	}
	if !strings.Contains(string(data), "margaret@example.com") || strings.Contains(string(data), "grace@example.com") {
		t.Errorf("the export's cells:\n%s", data)
	}
	if loc := value(t, ctx, chromedp.Location()); !strings.HasSuffix(loc, "/admin/inbox") {
		t.Errorf("after the export the browser is at %s, want still the list", loc)
	}
}
