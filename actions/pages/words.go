package pages

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/formq/formq/actions"
)

// words are the hosted pages' own words by language, for an action's
// lang: (actions.Languages); en is formq's, and every other language has
// each of its keys. Messages about values are the action's messages:.
var words = map[string]map[string]string{
	"en": {
		"error":            "Error:",
		"back":             "Back to the page you came from",
		"marked":           "Fields marked",
		"are_required":     "are required.",
		"honeypot":         "Leave this empty",
		"choose":           "Choose…",
		"kept":             "kept — choose another to replace it",
		"progress":         "Upload progress",
		"sending":          "Sending…",
		"submit":           "Submit",
		"summary":          "Please fix the errors below.",
		"captcha_noscript": "This form asks your browser to solve a short challenge; it needs JavaScript.",
		"status":           "Status:",
		"thanks":           "Thank you, your submission was received.",
		"another":          "Submit another",
		"reference":        "Reference:",
		"queued":           "Queued",
		"processing":       "Processing",
		"completed":        "Completed",
		"failed":           "Failed",
		"rejected":         "Rejected",
		"up_to":            "up to %s",
		"files_each":       "up to %d files, %s each",
	},
	"de": {
		"error":            "Fehler:",
		"back":             "Zurück zur vorherigen Seite",
		"marked":           "Mit",
		"are_required":     "markierte Felder sind Pflichtfelder.",
		"honeypot":         "Dieses Feld leer lassen",
		"choose":           "Bitte wählen…",
		"kept":             "behalten — wählen Sie eine andere Datei, um sie zu ersetzen",
		"progress":         "Upload-Fortschritt",
		"sending":          "Wird gesendet…",
		"submit":           "Absenden",
		"summary":          "Bitte korrigieren Sie die markierten Angaben.",
		"captcha_noscript": "Dieses Formular lässt Ihren Browser eine kurze Aufgabe lösen; dafür braucht es JavaScript.",
		"status":           "Status:",
		"thanks":           "Vielen Dank, Ihre Einsendung ist angekommen.",
		"another":          "Weitere Einsendung",
		"reference":        "Referenz:",
		"queued":           "In der Warteschlange",
		"processing":       "In Bearbeitung",
		"completed":        "Abgeschlossen",
		"failed":           "Fehlgeschlagen",
		"rejected":         "Abgelehnt",
		"up_to":            "bis zu %s",
		"files_each":       "bis zu %d Dateien, je %s",
	},
}

// word is the hosted pages' word for key in the language of tag, English
// when that language has none.
func word(tag, key string) string {
	if w, ok := words[actions.PrimaryLang(tag)][key]; ok {
		return w
	}
	return words["en"][key]
}

// htmlLang is the lang attribute of a page in tag's language.
func htmlLang(tag string) string {
	if tag == "" {
		return "en"
	}
	return tag
}

// limits writes an upload's limits for people in tag's language, as
// actions.Upload.Limits does in English.
func limits(tag string, u *actions.Upload) string {
	if actions.PrimaryLang(tag) == "en" {
		return u.Limits()
	}
	s := fmt.Sprintf(word(tag, "up_to"), actions.HumanSize(u.MaxSize))
	if u.MaxFiles > 1 {
		s = fmt.Sprintf(word(tag, "files_each"), u.MaxFiles, actions.HumanSize(u.MaxSize))
	}
	if t := actions.HumanTypes(u.Types); t != "" {
		return t + ", " + s
	}
	return upperFirst(s)
}

// upperFirst writes s with its first letter in upper case.
func upperFirst(s string) string {
	if s == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
