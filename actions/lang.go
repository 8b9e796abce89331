package actions

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Languages are the languages formq's hosted pages speak, for an action's
// lang: (with any region: de-CH speaks de). English is formq's own.
var Languages = []string{"en", "de"}

// langTag is the shape of a BCP 47 language tag formq takes: a language
// and optional subtags, like de, de-CH or pt-BR.
var langTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

// PrimaryLang is a language tag's language, in lower case: de for de-CH;
// en for an empty tag.
func PrimaryLang(tag string) string {
	if tag == "" {
		return "en"
	}
	l, _, _ := strings.Cut(tag, "-")
	return strings.ToLower(l)
}

// checkLang reports what is wrong with an action's lang:, if anything.
func checkLang(tag string) string {
	if tag == "" {
		return ""
	}
	if !langTag.MatchString(tag) || !slices.Contains(Languages, PrimaryLang(tag)) {
		return fmt.Sprintf("lang %q: want one of the languages of the hosted pages, %s (with a region if you like, like de-CH)", tag, strings.Join(Languages, ", "))
	}
	return ""
}
