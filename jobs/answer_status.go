package jobs

// The status fields of what a submission's steps answered: a named
// step's data (s{N}.name, s{N}.data), and a rejection's field errors,
// form message and staged files (errors, message, kept).

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/formq/formq/submission"
)

// StepAnswered records that step i completed, with its name and the data
// it answered (data may be empty: the name alone is recorded).
func (s *StatusStore) StepAnswered(ctx context.Context, id string, i int, name string, data map[string]string) error {
	extra := []any{stepField(i, "name"), name}
	if len(data) > 0 {
		b, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("jobs: encode the data of %s: %w", id, err)
		}
		extra = append(extra, stepField(i, "data"), string(b))
	}
	return s.stepEnded(ctx, id, i, submission.StepCompleted, "", extra...)
}

// Reject ends a submission rejected by step i, in one write: the step
// rejected, the field errors, the form message and the staged copies of
// its files. A status that is gone (erased) is written again, as every
// status write does.
func (s *StatusStore) Reject(ctx context.Context, id string, i int, name string, errs map[string][]string, message string, staged []submission.StagedFile) error {
	e, err1 := json.Marshal(errs)
	k, err2 := json.Marshal(staged)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("jobs: encode the rejection of %s", id)
	}
	fields := []any{stepField(i, "state"), submission.StepRejected, "status", submission.StatusRejected,
		"errors", string(e), "message", message, "kept", string(k)}
	if name != "" {
		fields = append(fields, stepField(i, "name"), name)
	}
	return s.write(ctx, id, fields...)
}

// decodeAnswer reads what the steps answered from a status hash into st.
func decodeAnswer(st *submission.Status, h map[string]string) error {
	for i := range st.Steps {
		name := h[stepField(i, "name")]
		st.Steps[i].Name = name
		raw := h[stepField(i, "data")]
		if name == "" || raw == "" {
			continue
		}
		var data map[string]string
		if err := json.Unmarshal([]byte(raw), &data); err != nil {
			return fmt.Errorf("jobs: decode the data of step %d of %s: %w", i+1, st.ID, err)
		}
		if st.Data == nil {
			st.Data = map[string]map[string]string{}
		}
		st.Data[name] = data
	}
	if st.Status != submission.StatusRejected {
		return nil
	}
	st.Message = h["message"]
	if raw := h["errors"]; raw != "" && raw != "null" {
		if err := json.Unmarshal([]byte(raw), &st.Errors); err != nil {
			return fmt.Errorf("jobs: decode the errors of %s: %w", st.ID, err)
		}
	}
	if raw := h["kept"]; raw != "" && raw != "null" {
		if err := json.Unmarshal([]byte(raw), &st.Staged); err != nil {
			return fmt.Errorf("jobs: decode the kept files of %s: %w", st.ID, err)
		}
	}
	return nil
}
