package email

import (
	"context"
	"errors"
	"testing"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// outbox keeps what a Mailer was asked to send.
type outbox struct{ sent []*Email }

func (o *outbox) Send(_ context.Context, e *Email) error {
	o.sent = append(o.sent, e)
	return nil
}

// TestAutoresponderMailsTheSubmitter: "{email}" becomes the address the
// submission holds; a value that is not one bare address fails the step
// for good instead of mailing anything.
func TestAutoresponderMailsTheSubmitter(t *testing.T) {
	box := &outbox{}
	st := Step(box, nil)
	cfg := map[string]any{"to": []any{"team@example.com", "{email}"}, "subject": "Thanks {name}"}
	if err := st.Check(cfg); err != nil {
		t.Fatalf("check: %v", err)
	}
	sub := &submission.Submission{ID: "01A", Action: "contact", Values: map[string]any{"email": "ada@example.com", "name": "Ada"}}
	if err := st.Run(context.Background(), step.Run{Submission: sub, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if len(box.sent) != 1 || len(box.sent[0].To) != 2 || box.sent[0].To[1] != "ada@example.com" {
		t.Fatalf("sent %+v", box.sent)
	}
	for _, bad := range []any{"Eve <eve@example.com>, x@example.com", "", nil, "not an address", "ada@example.com\r\nBcc: x@example.com"} {
		sub.Values["email"] = bad
		err := st.Run(context.Background(), step.Run{Submission: sub, Config: cfg})
		if !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("value %q: %v, want a permanent failure", bad, err)
		}
	}
	if len(box.sent) != 1 {
		t.Errorf("bad values were mailed: %d messages", len(box.sent))
	}
}
