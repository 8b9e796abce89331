package submit

// Files kept across a failed submit, and the sealed state an error
// redirect carries back to the sender's page.

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/labstack/echo/v4"
	"github.com/oklog/ulid/v2"
)

// Lifetimes of what a failed submit hands back.
const (
	// KeptTTL is how long a kept file's reference opens.
	KeptTTL = staging.KeptTTL
	// StateTTL is how long a formq_state token opens.
	StateTTL = 10 * time.Minute
)

// maxStateValue bounds one value carried in a formq_state token, and
// maxStateValues all of them, so the redirect's URL stays short; longer
// values are left out (the errors are always carried).
const (
	maxStateValue  = 1000
	maxStateValues = 4000
)

// keptRef is a reference sent back in a form, not yet attached: it is
// attached once the body is read, and only if no new file took its place.
type keptRef struct {
	upload *actions.Upload
	ref    staging.Ref
	token  string
}

// keep turns the files of a submission that failed validation into kept
// staged uploads: files streamed in this request are copied under a
// staged key; files that came by reference still have theirs. Kept
// references that were not attached are handed back as they came.
func (h *Handler) keep(ctx context.Context, s *intake) map[string][]web.KeptFile {
	if h.objects == nil || h.sealer == nil {
		return nil
	}
	kept := map[string][]web.KeptFile{}
	ctx = context.WithoutCancel(ctx)
	for _, file := range s.form.files {
		u := s.a.Upload(file.Field)
		if u == nil {
			continue
		}
		staged := s.form.fromStaged[file.Key]
		if staged == "" {
			staged = submission.StagedKey(ulid.Make().String())
			obj := file.Object
			obj.Key = staged
			if err := h.objects.Copy(ctx, file.Key, obj); err != nil {
				h.log.WarnContext(ctx, "could not keep a file of a refused submission", "key", file.Key, "err", err)
				continue
			}
		}
		r := staging.Ref{Key: staged, Action: s.a.Name, Field: u.Name, MaxSize: u.MaxSize, Types: u.Types,
			Size: file.Size, ContentType: file.ContentType, SHA256: file.SHA256, Filename: file.Filename, Kept: true,
			Expires: h.now().Add(KeptTTL).Unix()}
		token, err := staging.SealRef(h.sealer, r, KeptTTL)
		if err != nil {
			continue
		}
		kept[u.Name] = append(kept[u.Name], web.KeptFile{Ref: token, Filename: file.Filename, Size: file.Size, ContentType: file.ContentType})
	}
	for _, k := range s.form.pendingKept {
		kept[k.upload.Name] = append(kept[k.upload.Name], web.KeptFile{Ref: k.token, Filename: k.ref.Filename, Size: k.ref.Size, ContentType: k.ref.ContentType})
	}
	if len(kept) == 0 {
		return nil
	}
	return kept
}

// attachKept attaches the kept references of fields that got no new file.
func (h *Handler) attachKept(ctx context.Context, s *intake) error {
	pending := s.form.pendingKept
	s.form.pendingKept = nil
	for _, k := range pending {
		if s.form.fileCount[k.upload.Name] >= k.upload.MaxFiles {
			continue // a file chosen again replaces the kept one
		}
		if err := h.attachOpened(ctx, s, k.upload, k.ref); err != nil {
			return err
		}
	}
	return nil
}

// formState is what a formq_state token carries: the 422's JSON.
type formState struct {
	// ID is the token's own random id, under which its one read is
	// claimed (the token's text is not canonical: base64 has spellings
	// that open the same).
	ID      string                    `json:"i"`
	Action  string                    `json:"a"`
	Message string                    `json:"m"`
	Errors  actions.FieldErrors       `json:"e"`
	Values  map[string]any            `json:"v,omitempty"`
	Kept    map[string][]web.KeptFile `json:"k,omitempty"`
	// Omitted names the fields whose values were too long to carry.
	Omitted []string `json:"o,omitempty"`
}

// stateAnswer is the answer of GET /actions/{name}/state/{token}: the
// 422's JSON, and the fields whose values it could not carry, so the page
// can say so instead of showing them silently empty.
type stateAnswer struct {
	web.ErrorBody
	Omitted []string `json:"omitted,omitempty"`
}

// StatePurpose is the seal purpose of an action's formq_state tokens.
func StatePurpose(action string) string { return "state:" + action }

// sealState seals a validation failure for an error redirect. Sensitive
// values are never in e.Values; long values are left out.
func (h *Handler) sealState(a *actions.Action, e *web.Error) (string, error) {
	st := formState{ID: rand.Text(), Action: a.Name, Message: e.Message, Errors: e.Fields, Values: map[string]any{}, Kept: e.Kept}
	total := 0
	for _, f := range a.Fields {
		v, ok := e.Values[f.Name]
		if !ok || f.Sensitive() {
			continue
		}
		n := 0
		switch t := v.(type) {
		case string:
			n = len(t)
		case []string:
			for _, s := range t {
				n += len(s)
			}
		}
		if n > maxStateValue || total+n > maxStateValues {
			st.Omitted = append(st.Omitted, f.Name)
			continue
		}
		total += n
		st.Values[f.Name] = v
	}
	return h.sealer.Seal(StatePurpose(a.Name), st, StateTTL)
}

// State handles GET /actions/{name}/state/{token}: the validation failure
// an error redirect carried, as the same JSON the 422 answered, for the
// page's server or script to show the errors and kept values again. A
// token opens once: the page's URL, left in history, logs and analytics,
// is no key to the person's values after the page read them.
func (h *Handler) State(c echo.Context) error {
	web.JSONErrors(c)
	a, ok := h.actions.Get(c.Param("name"))
	if !ok {
		return web.ErrActionNotFound
	}
	var st formState
	err := h.sealer.Open(StatePurpose(a.Name), c.Param("token"), &st)
	switch {
	case errors.Is(err, actions.ErrTokenExpired):
		return web.ErrBadRequest.With(err, "The form state has expired (it opens for 10 minutes); show the form empty.")
	case err != nil || st.Action != a.Name || st.ID == "":
		return web.ErrBadRequest.With(err, "The form state token is not valid for this action.")
	}
	if h.states != nil {
		first, err := h.states.Claim(c.Request().Context(), submission.StateReadKey(st.ID), StateTTL+claimSlack)
		if err != nil {
			return web.ErrUnavailable.With(err)
		}
		if !first {
			return web.ErrBadRequest.With(nil, "The form state was read already (it opens once); show the form empty.")
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	e := web.ErrValidation.WithForm(a, st.Errors, st.Values)
	e.Message, e.Kept = st.Message, st.Kept
	return c.JSON(http.StatusOK, stateAnswer{ErrorBody: web.Body(e), Omitted: st.Omitted})
}

// invalid answers a validation failure of a submission: files kept, and
// for browsers an error redirect back to the sender's page when the form
// or the action asks for one.
func (h *Handler) invalid(c echo.Context, s *intake, e *web.Error, kept map[string][]web.KeptFile) error {
	e.Kept, e.Redirect = kept, s.redirect
	e.Back = h.backLink(c, s.a)
	target := s.errorRedirect
	if target == "" && s.a.ErrorRedirect != "" {
		target = h.site.Absolute(c, s.a.ErrorRedirect)
	}
	if target == "" || web.WantsJSON(c.Request()) {
		return e
	}
	token, err := h.sealState(s.a, e)
	if err != nil {
		return web.ErrInternal.With(err)
	}
	for k, v := range e.Header {
		c.Response().Header().Set(k, v)
	}
	return c.Redirect(http.StatusSeeOther, web.WithState(target, token))
}

// backLink is the page the sender came from, when the browser said and
// it is on formq's or an allowed origin.
func (h *Handler) backLink(c echo.Context, a *actions.Action) string {
	ref := c.Request().Referer()
	if ref == "" {
		return ""
	}
	if t, err := h.site.RedirectTarget(c, a, "Referer", ref); err == nil && t != "" {
		if len(t) > len(h.site.Origin(c)) && t[:len(h.site.Origin(c))] == h.site.Origin(c) {
			return "" // formq's own page: the form is right here
		}
		return t
	}
	return ""
}
