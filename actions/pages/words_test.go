package pages

import (
	"maps"
	"slices"
	"testing"

	"github.com/formq/formq/actions"
)

// TestEveryLanguageHasEveryWord: each language an action's lang: may
// name has each of the hosted pages' words, and no word English lacks.
func TestEveryLanguageHasEveryWord(t *testing.T) {
	en := slices.Sorted(maps.Keys(words["en"]))
	for _, lang := range actions.Languages {
		got := slices.Sorted(maps.Keys(words[lang]))
		if !slices.Equal(got, en) {
			t.Errorf("%s has the words %v; want those of en, %v", lang, got, en)
		}
		for key, w := range words[lang] {
			if w == "" {
				t.Errorf("%s: %s is empty", lang, key)
			}
		}
	}
	if len(words) != len(actions.Languages) {
		t.Errorf("words has %d languages, actions.Languages %d", len(words), len(actions.Languages))
	}
}
