package actions

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Keys of an action's messages that answer a whole post rather than one
// field: over the rate limit, a refused captcha, a file sent before the
// captcha's answer, and the message of a post with field errors.
const (
	MessageRateLimited  = "rate_limited"
	MessageCaptcha      = "captcha"
	MessageCaptchaFirst = "captcha_first"
	MessageInvalid      = "invalid"
)

// actionMessageKeys are the keys an action's messages may have: every
// rule of fields and uploads, then the answers to a whole post.
var actionMessageKeys = func() []string {
	keys := slices.Clone(messageRules)
	for _, k := range uploadMessageRules {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return append(keys, MessageRateLimited, MessageCaptcha, MessageCaptchaFirst, MessageInvalid)
}()

// applyMessages makes an action's messages (its messages: key) the
// default of each of its fields and uploads, under their own messages,
// and keeps them for the answers to a whole post. So one list in the
// form's language replaces formq's English everywhere: field errors,
// the public declaration client.js checks with, the hosted form.
func (a *Action) applyMessages(m map[string]string) []string {
	var problems []string
	for _, key := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(actionMessageKeys, key) {
			problems = append(problems, fmt.Sprintf("messages: unknown key %q, want one of %s", key, strings.Join(actionMessageKeys, ", ")))
		}
	}
	if len(m) == 0 {
		return problems
	}
	a.Messages = m
	for _, f := range a.Fields {
		f.Messages = underOwn(f.Messages, m, messageRules)
	}
	for _, u := range a.Uploads {
		u.Messages = underOwn(u.Messages, m, uploadMessageRules)
	}
	return problems
}

// underOwn is own with the messages of defaults for the rules it does
// not set.
func underOwn(own, defaults map[string]string, rules []string) map[string]string {
	out := maps.Clone(own)
	for _, r := range rules {
		if d := defaults[r]; d != "" && out[r] == "" {
			if out == nil {
				out = map[string]string{}
			}
			out[r] = d
		}
	}
	return out
}

// Say is the action's message for key (one of MessageRateLimited,
// MessageCaptcha...), or def when it has none.
func (a *Action) Say(key, def string) string {
	if m := a.Messages[key]; m != "" {
		return m
	}
	return def
}
