package routes_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/formq/formq/internal/teststack"
)

// germanActions: a hosted form in German, its messages too.
const germanActions = `actions:
  anmeldung:
    title: Anmeldung
    lang: de-CH
    messages: {required: "{label} fehlt"}
    fields:
      name: {type: text, required: true}
      land: {type: select, options: [CH, DE]}
    uploads:
      bild: {max_size: 1MB, max_files: 2, types: [image/png]}
  contact:
    fields:
      name: {type: text, required: true}
`

// TestHostedPagesInGerman: an action's lang: puts the hosted form, its
// re-render and its done page in that language (formq.js follows the
// page's lang attribute); another action stays in English.
func TestHostedPagesInGerman(t *testing.T) {
	st := startWithActions(t, germanActions, nil)
	html := map[string]string{"Accept": browserAccept["Accept"]}

	_, form := teststack.Do(t, http.MethodGet, st.APIURL+"/forms/anmeldung", nil, html)
	for _, want := range []string{`<html lang="de-CH">`, `Mit <span class="req">*</span> markierte Felder sind Pflichtfelder.`,
		`<option value="">Bitte wählen…</option>`, `PNG, bis zu 2 Dateien, je 1 MB.`, `data-pending-label="Wird gesendet…"`, `aria-label="Upload-Fortschritt"`} {
		if !strings.Contains(string(form), want) {
			t.Errorf("the form lacks %s", want)
		}
	}

	_, again := send(t, st, "anmeldung", url.Values{"name": {""}}, html)
	for _, want := range []string{`<title>Fehler: Anmeldung</title>`, `<strong>Bitte korrigieren Sie die markierten Angaben.</strong>`, `Name fehlt`} {
		if !strings.Contains(string(again), want) {
			t.Errorf("the re-rendered form lacks %s", want)
		}
	}

	resp, _ := teststack.Post(t, st.APIURL+"/actions/anmeldung", strings.NewReader("name=Ada"), "application/x-www-form-urlencoded", html)
	_, done := teststack.Do(t, http.MethodGet, resp.Header.Get("Location"), nil, html)
	for _, want := range []string{`<html lang="de-CH">`, `Vielen Dank, Ihre Einsendung ist angekommen.`, `Status: <span`, `Referenz: `, `>Weitere Einsendung</a>`} {
		if !strings.Contains(string(done), want) {
			t.Errorf("the done page lacks %s:\n%s", want, done)
		}
	}

	_, plain := teststack.Do(t, http.MethodGet, st.APIURL+"/forms/contact", nil, html)
	if !strings.Contains(string(plain), `<html lang="en">`) || !strings.Contains(string(plain), `Fields marked <span class="req">*</span> are required.`) {
		t.Errorf("an action without lang: is not in English")
	}
}
