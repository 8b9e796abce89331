package webhook

// The app's answer to a webhook step: data for the person's message and
// redirect (2xx {"data": {...}}), or a refusal with field errors
// (422 {"errors": {...}, "message": "..."}).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"github.com/formq/formq/jobs/step"
)

// answerBody is the JSON an app may answer with.
type answerBody struct {
	Data    map[string]json.RawMessage `json:"data"`
	Errors  map[string]json.RawMessage `json:"errors"`
	Message *string                    `json:"message"`
}

// readAnswer reads the app's reply to a webhook step: a 2xx without JSON
// completes the step as before; a 2xx with JSON may carry data; a 422 is
// a refusal. An answer formq cannot read (too large, not JSON, of the
// wrong shape) fails the attempt with why, and is retried like any
// failure.
func readAnswer(r step.Run, url string, reply *Reply) error {
	where := step.RedactURL(url)
	refusal := reply.Status == http.StatusUnprocessableEntity
	if !refusal && !isJSON(reply.ContentType) {
		return nil
	}
	if reply.Truncated {
		return fmt.Errorf("webhook to %s answered %d with a body over %d KiB: formq reads at most that", where, reply.Status, MaxReply>>10)
	}
	body := bytes.TrimSpace(reply.Body)
	if !refusal && len(body) == 0 {
		return nil
	}
	var a answerBody
	if err := json.Unmarshal(body, &a); err != nil {
		if refusal {
			return fmt.Errorf("webhook to %s answered 422 without a refusal formq can read (want JSON {\"errors\": {\"field\": [\"message\"]}, \"message\": \"...\"}): %v", where, err)
		}
		return fmt.Errorf("webhook to %s answered %d with invalid JSON: %v", where, reply.Status, err)
	}
	if refusal {
		errs, err := fieldErrors(a.Errors)
		if err != nil {
			return fmt.Errorf("webhook to %s answered 422 with %v", where, err)
		}
		msg := ""
		if a.Message != nil {
			msg = *a.Message
		}
		if len(errs) == 0 && msg == "" {
			return fmt.Errorf("webhook to %s answered 422 without errors or a message; send {\"errors\": {\"field\": [\"message\"]}} to refuse the submission", where)
		}
		return step.Reject(errs, msg)
	}
	if a.Data == nil {
		return nil
	}
	data := make(step.Data, len(a.Data))
	for k, raw := range a.Data {
		v, err := scalar(raw)
		if err != nil {
			return fmt.Errorf("webhook to %s answered data.%s %v", where, k, err)
		}
		data[k] = v
	}
	if r.Answer != nil {
		r.Answer(data)
	}
	return nil
}

// fieldErrors reads "errors": each field's messages, a list of strings
// (a single string is taken as a list of one).
func fieldErrors(raw map[string]json.RawMessage) (map[string][]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make(map[string][]string, len(raw))
	for field, v := range raw {
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			var one string
			if json.Unmarshal(v, &one) != nil {
				return nil, fmt.Errorf("errors.%s of the wrong shape: want a list of messages", field)
			}
			list = []string{one}
		}
		out[field] = list
	}
	return out, nil
}

// scalar is a data value as text: a string as is, a number as written, a
// boolean as true or false, null as empty.
func scalar(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		return "", fmt.Errorf("is an object or a list: want a string, number, boolean or null")
	}
}

// isJSON reports whether a Content-Type is JSON (application/json or a
// +json type).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (len(mt) > 5 && mt[len(mt)-5:] == "+json")
}
