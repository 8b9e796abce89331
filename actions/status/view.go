package status

import (
	"fmt"

	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
)

// viewer is who reads a submission's status: the admin sees all, the
// holder of the capability the submitter's view.
type viewer struct {
	admin bool
	cap   web.Capability
	token string
}

// statusViewer checks the request for the admin token or the submission's
// capability. Without either it answers exactly as for an unknown id.
func (h *Handler) statusViewer(c echo.Context, id string) (viewer, error) {
	if web.Bearer(c, h.cfg.AdminToken) {
		return viewer{admin: true, token: c.QueryParam("t")}, nil
	}
	tok := c.QueryParam("t")
	cp, ok := web.OpenCapability(h.sealer, tok, id)
	if !ok {
		return viewer{}, errNoCapability
	}
	return viewer{cap: cp, token: tok}, nil
}

// errNoCapability answers a status asked for without its t= (or with
// another submission's): before any lookup, so it is the same for every
// id and tells nothing of which exist, but it says what the link needs.
var errNoCapability = web.ErrSubmissionMissing.With(nil,
	"No such submission for this link: a submission's status is shown with the t= of the statusUrl formq answered (or its done page link), or with the admin token.")

// forSubmitter is what the submitter sees of a status: the state, the
// steps and their states, a user-facing error; never file names, storage
// keys, hashes or the internal errors of steps.
func forSubmitter(st *submission.Status) *submission.Status {
	out := *st
	out.Files = make([]submission.File, len(st.Files))
	for i, f := range st.Files {
		out.Files[i] = submission.File{Field: f.Field, Object: submission.Object{Size: f.Size, ContentType: f.ContentType}}
	}
	out.Steps = make([]submission.StepStatus, len(st.Steps))
	failed := ""
	for i, s := range st.Steps {
		out.Steps[i] = submission.StepStatus{Type: s.Type, Name: s.Name, State: s.State, Attempts: s.Attempts}
		if s.State == submission.StepFailed && failed == "" {
			failed = fmt.Sprintf("Step %d (%s) failed.", i+1, s.Type)
		}
	}
	if out.Error != "" {
		out.Error = "Your submission was received, but its follow-up work failed."
		if failed != "" {
			out.Error += " " + failed
		}
	}
	return &out
}

// submitterStatus is the JSON of the submitter's view: its files show the
// field, size and type only.
type submitterStatus struct {
	*submission.Status
	Files []submitterFile `json:"files"`
}

type submitterFile struct {
	Field       string `json:"field"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
}

// render is the JSON value of a status for the viewer.
func (v viewer) render(st *submission.Status) any {
	if v.admin {
		return st
	}
	out := submitterStatus{Status: st, Files: make([]submitterFile, len(st.Files))}
	for i, f := range st.Files {
		out.Files[i] = submitterFile{Field: f.Field, Size: f.Size, ContentType: f.ContentType}
	}
	return out
}

// decoyStatus is the status of a honeypot's fake success: completed, with
// the action's steps done, like a real submission that went through.
func (h *Handler) decoyStatus(cp web.Capability) *submission.Status {
	st := &submission.Status{
		ID: cp.ID, Action: cp.Action, Status: submission.StatusCompleted, Files: []submission.File{},
		Steps: []submission.StepStatus{}, UpdatedAt: cp.At, Version: 1,
	}
	if a, ok := h.actions.Get(cp.Action); ok {
		for _, s := range a.Steps {
			st.Steps = append(st.Steps, submission.StepStatus{Type: s.Type, State: submission.StepCompleted, Attempts: 1})
		}
		st.Version = int64(2 + 2*len(a.Steps))
		if len(a.Revalidate.Paths)+len(a.Revalidate.Tags) > 0 {
			st.Event = fmt.Sprintf("%d-0", cp.At.UnixMilli())
		}
	}
	return st
}
