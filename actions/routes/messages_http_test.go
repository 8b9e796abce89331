package routes_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/formq/formq/internal/teststack"
)

// frenchActions: an action whose messages: put formq's messages in
// French, one field keeping a message of its own.
const frenchActions = `actions:
  inscription:
    title: Inscription
    rate_limit: 2/1m
    messages:
      required: "{label} est obligatoire"
      max_length: "{label} : {max_length} caractères au plus"
      format: "{label} n'est pas une adresse valable"
      max_size: "{label} : {max_size} au plus"
      rate_limited: "Trop d'envois : réessayez plus tard."
      invalid: "Veuillez corriger les erreurs."
    fields:
      nom: {type: text, required: true, max_length: 5}
      courriel: {type: email, required: true, label: Courriel}
      ville: {type: text, required: true, messages: {required: "Dites-nous votre ville"}}
    uploads:
      photo: {max_size: 1KB}
`

// TestActionMessagesReplaceTheDefaults: an action's messages: are what
// a post's field errors say (JSON and the hosted re-render), what the
// public declaration gives client.js, and the 429 of its rate limit; a
// field's own message still wins.
func TestActionMessagesReplaceTheDefaults(t *testing.T) {
	st := startWithActions(t, frenchActions, nil)

	resp, raw := send(t, st, "inscription", url.Values{"nom": {"Ada Lovelace"}, "courriel": {"ada"}}, nil)
	var failed struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
		Errors map[string][]string `json:"errors"`
	}
	if resp.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(raw, &failed) != nil {
		t.Fatalf("post: %d %s", resp.StatusCode, raw)
	}
	if failed.Error.Message != "Veuillez corriger les erreurs." {
		t.Errorf("error.message %q; want the action's invalid", failed.Error.Message)
	}
	want := map[string]string{
		"nom":      "Nom : 5 caractères au plus",
		"courriel": "Courriel n'est pas une adresse valable",
		"ville":    "Dites-nous votre ville",
	}
	for field, msg := range want {
		if got := failed.Errors[field]; len(got) != 1 || got[0] != msg {
			t.Errorf("errors.%s = %q; want [%q]", field, got, msg)
		}
	}

	// The hosted form shows them when it comes back with the errors.
	_, page := send(t, st, "inscription", url.Values{"nom": {""}}, map[string]string{"Accept": "text/html"})
	for _, msg := range []string{"Nom est obligatoire", "Courriel est obligatoire", "Dites-nous votre ville", "<strong>Veuillez corriger les erreurs.</strong>"} {
		if !strings.Contains(string(page), msg) {
			t.Errorf("the re-rendered form lacks %q", msg)
		}
	}

	// client.js checks with the declaration's messages.
	_, decl := teststack.Do(t, http.MethodGet, st.APIURL+"/actions/inscription/schema", nil, nil)
	for _, msg := range []string{`"required":"Nom est obligatoire"`, `"max_length":"Nom : 5 caractères au plus"`, `"max_size":"Photo : 1KB au plus"`, `"required":"Dites-nous votre ville"`} {
		if !strings.Contains(string(decl), msg) {
			t.Errorf("the declaration lacks %s: %s", msg, decl)
		}
	}

	// Over the rate limit (2 posts a minute, two sent above).
	resp, raw = send(t, st, "inscription", url.Values{"nom": {"Ada"}}, nil)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(raw), "Trop d'envois : réessayez plus tard.") {
		t.Errorf("over the rate limit: %d %s", resp.StatusCode, raw)
	}
}
