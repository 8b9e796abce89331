package client_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// germanPage is a page in German that links formq.css: form a speaks the
// page's language, with one word replaced by the page's strings() for
// German; form b replaces the summary with its own attribute; form c sits
// in a section in English.
func germanPage(s *site) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/de" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Anmelden</title>
<link rel="stylesheet" href="%[1]s/formq.css">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;background:#fff;color:#1d1d1d}
label{display:block;margin-top:1rem}@media (prefers-color-scheme: dark){body{background:#121212;color:#eee}}</style>
<script type="module">import { strings } from "%[1]s/formq.js"; strings({ retry: "Noch {n} Sekunden warten." }, "de");</script>
</head><body><main><h1>Dem Club beitreten</h1>
<form id="a" data-formq data-formq-success="message" data-formq-status method="post" enctype="multipart/form-data" action="%[1]s/actions/signup">
<label for="name">Name</label><input id="name" name="name">
<label for="email">E-Mail</label><input id="email" name="email" type="email">
<label for="plan">Tarif</label><select id="plan" name="plan"><option value="">Bitte wählen</option><option value="free">Kostenlos</option><option value="pro">Pro</option></select>
<label><input id="agree" name="agree" type="checkbox" value="true"> Ich akzeptiere die Bedingungen</label>
<progress data-formq-progress max="1" value="0" aria-label="Upload-Fortschritt"></progress>
<button>Anmelden</button>
<p data-formq-message></p><p data-formq-status-text></p>
</form>
<form id="b" data-formq data-formq-text-summary="Bitte prüfen Sie Ihre Eingaben." method="post" action="%[1]s/actions/signup">
<label for="b-name">Name</label><input id="b-name" name="name"><button>Senden</button></form>
<section lang="en"><form id="c" data-formq method="post" action="%[1]s/actions/signup">
<label for="c-name">Name</label><input id="c-name" name="name"><button>Send</button></form></section>
</main></body></html>`, s.api)
	}
}

// TestFormInGermanWithTheStylesheet: a page with lang="de" gets formq.js's
// words from formq-i18n-de.js, a form's data-formq-text-* and the page's
// strings() replace them, a section in English keeps English; formq.css
// styles the errors in light and dark; the status reads in German.
func TestFormInGermanWithTheStylesheet(t *testing.T) {
	s := startSite(t)
	s.more = germanPage(s)
	ctx := tab(t)
	summary := func(form string) string {
		t.Helper()
		run(t, ctx, chromedp.Click(chromedp.CSS("#"+form+" button")))
		waitJS(t, ctx, "the summary of form "+form, `!!document.querySelector("#`+form+`-summary")`)
		return evalString(t, ctx, `document.querySelector("#`+form+`-summary strong").textContent`)
	}
	run(t, ctx, darkMode(false), chromedp.Navigate(s.page+"/de"), chromedp.WaitVisible(chromedp.CSS("#a button")))
	for _, tt := range []struct{ form, want string }{
		{"a", "Bitte korrigieren Sie die markierten Angaben."},
		{"b", "Bitte prüfen Sie Ihre Eingaben."},
		{"c", "Please fix the errors below."},
	} {
		if got := summary(tt.form); got != tt.want {
			t.Errorf("form %s's summary = %q, want %q", tt.form, got, tt.want)
		}
	}
	style := func() string {
		return evalString(t, ctx, `[getComputedStyle(document.querySelector("#a-summary")).borderTopColor, getComputedStyle(document.querySelector("#name-error")).color].join(" / ")`)
	}
	if got := style(); got != "rgb(179, 38, 30) / rgb(179, 38, 30)" {
		t.Errorf("light: summary border / field error colour = %s, want formq.css's rgb(179, 38, 30)", got)
	}
	noAxeViolations(t, ctx, "the German form with formq.css")
	run(t, ctx, chromedp.ScrollIntoView(chromedp.CSS("h1")))
	screenshot(t, ctx, "form-de-light")
	run(t, ctx, darkMode(true))
	if got := style(); got != "rgb(255, 180, 171) / rgb(255, 180, 171)" {
		t.Errorf("dark: summary border / field error colour = %s, want formq.css's rgb(255, 180, 171)", got)
	}
	screenshot(t, ctx, "form-de-dark")
	run(t, ctx, darkMode(false))

	// The page's strings() for German: formq is busy (503, Retry-After: 7).
	s.busy.Store(1)
	run(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), "Grete"), chromedp.SendKeys(chromedp.CSS("#email"), "grete@example.com"),
		chromedp.SetValue(chromedp.CSS("#plan"), "free"), chromedp.Click(chromedp.CSS("#agree")),
	)
	run(t, ctx, chromedp.Click(chromedp.CSS("#a button")))
	waitJS(t, ctx, "the 503's notice", `(document.querySelector("#a-summary strong") || {}).textContent != "Bitte korrigieren Sie die markierten Angaben." && !document.querySelector("#a").hasAttribute("data-pending")`)
	if got := evalString(t, ctx, `document.querySelector("#a-summary strong").textContent`); !strings.HasSuffix(got, " Noch 7 Sekunden warten.") {
		t.Errorf("503 summary = %q, want the page's words for German", got)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS("#a button")))
	waitJS(t, ctx, "the status to reach completed", `document.querySelector("#a [data-formq-status-text]").dataset.status == "completed"`)
	if got := evalString(t, ctx, `document.querySelector("#a [data-formq-status-text]").textContent`); got != "Abgeschlossen" {
		t.Errorf("status text = %q, want Abgeschlossen", got)
	}
}
