package submit

// Upload references sent in place of files: checked, claimed and copied
// to the submission's keys while the body is read.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
)

// attachRef takes an upload reference sent in place of a file: it checks
// the seal, the expiry and that the reference fits the field, claims the
// staged object for this submission, checks the object itself (its size
// and its first bytes sniffed again, from one ranged GET) and copies that
// version of it to the submission's key. Problems are field errors; only
// S3 or Redis failing is an error.
func (h *Handler) attachRef(ctx context.Context, s *intake, u *actions.Upload, token string) error {
	f := s.form
	token = strings.TrimSpace(token)
	if token == "" || s.spam {
		return nil
	}
	r, err := staging.OpenRef(h.sealer, token)
	if h.objects == nil || err != nil {
		sum := sha256.Sum256([]byte(token))
		f.marks = append(f.marks, fileMark{field: u.Name, kind: "token", value: hex.EncodeToString(sum[:])})
		if s.replay != nil {
			return nil
		}
		return refExpired(f, u)
	}
	f.marks = append(f.marks, fileMark{field: u.Name, kind: "ref", value: r.Key})
	if s.replay != nil {
		return nil // a repeat: the reference counts in the fingerprint, nothing is claimed or copied
	}
	if r.Kept {
		f.pendingKept = append(f.pendingKept, keptRef{upload: u, ref: r, token: token})
		return nil
	}
	return h.attachOpened(ctx, s, u, r)
}

func refExpired(f *form, u *actions.Upload) error {
	f.errs.Add(u.Name, u.Label+": the uploaded file has expired or does not belong here; choose it again.")
	return nil
}

// attachOpened checks an opened reference's object and copies it to the
// submission.
func (h *Handler) attachOpened(ctx context.Context, s *intake, u *actions.Upload, r staging.Ref) error {
	f := s.form
	n := f.fileCount[u.Name]
	if n >= u.MaxFiles {
		if n == u.MaxFiles {
			f.errs.Add(u.Name, u.TooManyMessage())
		}
		f.fileCount[u.Name]++
		return nil
	}
	invalid := func() error { return refExpired(f, u) }
	_, _, resumable := submission.ParseTusKey(r.Key)
	if r.Action != "" && (r.Action != s.a.Name || r.Field != u.Name) || !strings.HasPrefix(r.Key, submission.StagedPrefix) && !resumable {
		return invalid()
	}
	if h.claims != nil {
		// One submission has the file: the first to claim it, for as
		// long as the reference opens. A submission that is not accepted
		// gives its claims back (see abandon).
		ok, err := h.claims.Claim(ctx, r.Key, s.sub.ID, h.claimTTL(r))
		if err != nil {
			return web.ErrUnavailable.With(err)
		}
		if !ok {
			f.errs.Add(u.Name, u.Label+": this uploaded file was already used by another submission; upload it again.")
			return nil
		}
		f.claimed = append(f.claimed, r.Key)
	}
	// The size, type and ETag come from one response: the copy below
	// takes that version of the object or none.
	snap, err := h.objects.Snapshot(ctx, r.Key)
	switch {
	case errors.Is(err, uploads.ErrNotFound):
		return invalid()
	case err != nil:
		return err
	case r.Size > 0 && snap.Size != r.Size:
		return invalid()
	case snap.Size > u.MaxSize || snap.Size > r.MaxSize:
		f.errs.Add(u.Name, u.TooLargeMessage())
		return nil
	}
	sniffed := uploads.Sniff(snap.Head)
	if !uploads.TypeAllowed(sniffed, u.Types) || !uploads.TypeAllowed(sniffed, r.Types) {
		f.errs.Add(u.Name, u.TypeMessage(sniffed))
		return nil
	}
	obj := uploads.Object{
		Key: submission.UploadKey(s.a.Name, s.sub.ID, u.Name, n), Size: snap.Size, ContentType: sniffed,
		SHA256: r.SHA256, Filename: r.Filename,
	}
	err = h.objects.CopyChecked(ctx, r.Key, snap.ETag, obj)
	switch {
	case errors.Is(err, uploads.ErrNotFound):
		return invalid()
	case errors.Is(err, uploads.ErrChanged):
		f.errs.Add(u.Name, u.Label+": the uploaded file changed while it was checked; upload it again.")
		return nil
	case err != nil:
		return err
	}
	f.fileCount[u.Name]++
	f.files = append(f.files, submission.File{Field: u.Name, Object: obj})
	f.staged = append(f.staged, r.Key)
	if resumable {
		f.staged = append(f.staged, r.Key+submission.TusInfoSuffix) // tusd's metadata of it
	}
	if f.fromStaged == nil {
		f.fromStaged = map[string]string{}
	}
	f.fromStaged[obj.Key] = r.Key
	return nil
}

// dropStaged deletes the staged files an accepted submission copied; the
// janitor removes any this misses.
func (h *Handler) dropStaged(ctx context.Context, f *form) {
	if len(f.staged) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := h.files.Delete(dctx, f.staged...); err != nil {
		h.log.WarnContext(ctx, "could not delete used staged uploads; the janitor will", "keys", f.staged, "err", err)
	}
	f.staged = nil
}

// skipRefused reads past a file the store refused. When the file is too
// long to read past, the submission stops reading (see stopped).
func (h *Handler) skipRefused(s *intake, p *uploads.Part) error {
	drained, err := staging.Drain(p)
	if err != nil {
		return err
	}
	if !drained {
		s.form.stopped = true
	}
	return nil
}

// stopped is the answer to a submission whose body was not read to its
// end because a refused file went on too long: the field errors found so
// far (a required field after the file was never seen, so it is not
// reported), and the connection closed rather than the rest read.
func (s *intake) stopped() error {
	return web.Closing(web.ErrValidation.WithForm(s.a, s.form.errs, echoValues(s.a, s.form.values)))
}

// closing marks an answer sent before the body was read to its end: the
// connection closes after it.
func Closing(e *web.Error) *web.Error {
	e.Header = map[string]string{echo.HeaderConnection: "close"}
	return e
}
