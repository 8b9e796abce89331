package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
	"github.com/oklog/ulid/v2"
)

// refPurpose binds sealed upload references to their use.
const refPurpose = "upload-ref"

// maxURLEncodedBytes bounds an application/x-www-form-urlencoded body,
// which is read whole: it carries no files, only values and references.
const maxURLEncodedBytes = 4 << 20

// maxDrain is how much of a refused file is read past so that the answer
// can still list the form's other problems; beyond it the read stops and
// the connection is closed after the answer.
const maxDrain = 16 << 20

// ObjectStore is what staged uploads and references need of the store,
// beyond FileStore.
type ObjectStore interface {
	FileStore
	Snapshot(ctx context.Context, key string) (uploads.Snapshot, error)
	Copy(ctx context.Context, from string, obj uploads.Object) error
	CopyChecked(ctx context.Context, from, etag string, obj uploads.Object) error
	PresignPost(ctx context.Context, key, contentType string, maxSize int64, ttl time.Duration) (uploads.PresignedPost, error)
}

var _ ObjectStore = (*uploads.Store)(nil)

// uploadRef is what an upload reference carries, sealed: where the staged
// file is and the limits it was taken under. Size, ContentType and SHA256
// are known for files that went through POST /uploads, not for presigned
// direct uploads, whose size and type are checked when they are used.
type uploadRef struct {
	Key         string   `json:"k"`
	Profile     string   `json:"p,omitempty"`
	Action      string   `json:"a,omitempty"`
	Field       string   `json:"f,omitempty"`
	MaxSize     int64    `json:"m"`
	Types       []string `json:"y,omitempty"`
	Size        int64    `json:"s,omitempty"`
	ContentType string   `json:"t,omitempty"`
	SHA256      string   `json:"h,omitempty"`
	Filename    string   `json:"n,omitempty"`
	// Kept marks a file kept from a failed submit: a new file for the
	// field replaces it.
	Kept bool `json:"kp,omitempty"`
	// Expires is when the reference stops opening (Unix seconds): its
	// claim lasts that long.
	Expires int64 `json:"e,omitempty"`
}

// uploadScope is where a staged upload takes its limits from: a named
// profile, or one upload field of an action.
type uploadScope struct {
	limits *actions.Upload
	gate   *actions. // whose origins, auth and rate limit apply
		Action
	ttl           time.Duration
	profile       string
	action, field string
}

func (h *Handler) uploadScope(profile, action, field string) (*uploadScope, error) {
	switch {
	case profile != "":
		p, ok := h.Profiles[profile]
		if !ok {
			return nil, ErrNotFound.With(nil, "No such upload profile.")
		}
		return &uploadScope{limits: &p.Upload, ttl: p.TTL, profile: profile, gate: p.Gate}, nil
	case action != "" && field != "":
		a, ok := h.Actions.Get(action)
		if !ok {
			return nil, ErrActionNotFound
		}
		u := a.Upload(field)
		if u == nil {
			return nil, ErrNotFound.With(nil, "The action has no such upload field.")
		}
		return &uploadScope{limits: u, ttl: actions.DefaultUploadRefTTL, action: action, field: field, gate: a}, nil
	}
	return nil, ErrBadRequest.With(nil, "Name an upload profile (profile=) or an action and its upload field (action= and field=).")
}

// admitUpload holds staging to the origins, rate limit and auth of the
// action whose field it is for, or of the profile.
func (h *Handler) admitUpload(c echo.Context, sc *uploadScope) error {
	if err := h.admit(c, sc.gate); err != nil {
		return err
	}
	_, err := h.authenticate(sc.gate, c.Request())
	return err
}

func (h *Handler) ref(sc *uploadScope, key string) uploadRef {
	return uploadRef{Key: key, Profile: sc.profile, Action: sc.action, Field: sc.field, MaxSize: sc.limits.MaxSize, Types: sc.limits.Types,
		Expires: h.now().Add(sc.ttl).Unix()}
}

// StagedUpload describes one file of POST /uploads.
type StagedUpload struct {
	Ref         string    `json:"ref"`
	Field       string    `json:"field"`
	Size        int64     `json:"size"`
	ContentType string    `json:"contentType"`
	SHA256      string    `json:"sha256,omitempty"` // not for resumable uploads
	Filename    string    `json:"filename,omitempty"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// StagedAnswer is the JSON answer of POST /uploads.
type StagedAnswer struct {
	OK      bool           `json:"ok"`
	Uploads []StagedUpload `json:"uploads"`
}

// Upload handles POST /uploads: files stream to S3 under the limits of a
// profile (?profile=) or of an action's upload field (?action=&field=),
// and each comes back as a sealed reference that a submission sends in
// place of the file. Any refused file refuses them all.
func (h *Handler) Upload(c echo.Context) error {
	req := c.Request()
	ctx := req.Context()
	q := req.URL.Query()
	sc, err := h.uploadScope(q.Get("profile"), q.Get("action"), q.Get("field"))
	if err != nil {
		return err
	}
	if err := h.admitUpload(c, sc); err != nil {
		return err
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEMultipartForm {
		return ErrUnsupportedMedia.With(err, "Send the files as multipart/form-data.")
	}
	maxBody := sc.limits.MaxSize*int64(sc.limits.MaxFiles) + 1<<20
	if req.ContentLength > maxBody {
		return ErrPayloadTooLarge.With(nil, fmt.Sprintf("The request is over the limit of %s.", actions.FormatSize(maxBody)))
	}
	req.Body = uploads.NewBodyReader(c.Response(), http.MaxBytesReader(c.Response(), req.Body, maxBody), h.ReadIdle)
	mr, err := uploads.NewMultipartReader(req.Body, req.Header.Get(echo.HeaderContentType), h.ReaderLimits)
	if err == nil {
		mr.SetLength(req.ContentLength)
	}
	if err != nil {
		return ErrBadRequest.With(err, "The multipart body has no boundary.")
	}

	var (
		stored []StagedUpload
		keys   []string
		errs   = actions.FieldErrors{}
		files  int
	)
	discard := func() { h.discard(ctx, filesOf(keys)) }
	for {
		p, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			discard()
			return err
		}
		if !p.IsFile || p.Filename == "" {
			continue // values and empty file inputs are read past
		}
		if files++; files > sc.limits.MaxFiles {
			if files == sc.limits.MaxFiles+1 {
				errs.Add(p.Field, sc.limits.TooManyMessage())
			}
			continue
		}
		key := submission.StagedKey(ulid.Make().String())
		obj, err := h.Files.Put(ctx, key, p, uploads.PutOptions{MaxSize: sc.limits.MaxSize, Types: sc.limits.Types, Filename: p.Filename})
		if msg, refused := refusal(sc.limits, err); refused {
			errs.Add(p.Field, msg)
			drained, derr := drain(p)
			if derr != nil {
				discard()
				return derr
			}
			if !drained {
				discard()
				return closing(ErrValidation.withForm(nil, errs, nil))
			}
			continue
		}
		if err != nil {
			discard()
			return err
		}
		keys = append(keys, key)
		r := h.ref(sc, key)
		r.Size, r.ContentType, r.SHA256, r.Filename = obj.Size, obj.ContentType, obj.SHA256, obj.Filename
		token, err := h.Sealer.Seal(refPurpose, r, sc.ttl)
		if err != nil {
			discard()
			return ErrInternal.With(err)
		}
		stored = append(stored, StagedUpload{
			Ref: token, Field: p.Field, Size: obj.Size, ContentType: obj.ContentType,
			SHA256: obj.SHA256, Filename: obj.Filename, ExpiresAt: h.now().Add(sc.ttl).UTC().Truncate(time.Second),
		})
	}
	if len(errs) > 0 {
		discard()
		return ErrValidation.withForm(nil, errs, nil)
	}
	if len(stored) == 0 {
		return ErrValidation.withForm(nil, actions.FieldErrors{"file": {"Choose a file to upload."}}, nil)
	}
	return c.JSON(http.StatusCreated, StagedAnswer{OK: true, Uploads: stored})
}

// PresignRequest is the JSON body of POST /uploads/presign.
type PresignRequest struct {
	Profile     string `json:"profile"`
	Action      string `json:"action"`
	Field       string `json:"field"`
	ContentType string `json:"contentType"`
	Filename    string `json:"filename"`
}

// PresignAnswer is the JSON answer of POST /uploads/presign: a form POST
// to S3 (url and fields; the file goes last, in a field named "file") and
// the reference to send to the action once S3 answered.
type PresignAnswer struct {
	OK        bool              `json:"ok"`
	URL       string            `json:"url"`
	Fields    map[string]string `json:"fields"`
	Ref       string            `json:"ref"`
	MaxSize   int64             `json:"maxSize"`
	ExpiresAt time.Time         `json:"expiresAt"`
}

// Presign handles POST /uploads/presign: a presigned S3 POST policy for
// one direct-to-S3 upload (its size at most the limit, its Content-Type
// the one declared, its key made here) and the sealed reference to it.
// The declared type is only a first check: the file's bytes are sniffed
// when the reference is used.
func (h *Handler) Presign(c echo.Context) error {
	var in PresignRequest
	req := c.Request()
	if err := json.NewDecoder(io.LimitReader(req.Body, 64<<10)).Decode(&in); err != nil {
		return ErrBadRequest.With(err, "Send a JSON object like {\"profile\": \"avatars\", \"contentType\": \"image/png\"}.")
	}
	sc, err := h.uploadScope(in.Profile, in.Action, in.Field)
	if err != nil {
		return err
	}
	if err := h.admitUpload(c, sc); err != nil {
		return err
	}
	ct, _, err := mime.ParseMediaType(in.ContentType)
	if err != nil || !strings.Contains(ct, "/") {
		return ErrValidation.withForm(nil, actions.FieldErrors{"contentType": {"Give the file's content type, like image/png."}}, nil)
	}
	if !uploads.TypeAllowed(ct, sc.limits.Types) {
		return ErrValidation.withForm(nil, actions.FieldErrors{"contentType": {sc.limits.TypeMessage(ct)}}, nil)
	}
	if h.Objects == nil {
		return ErrNotFound.With(nil, "Direct uploads are not available.")
	}
	key := submission.StagedKey(ulid.Make().String())
	post, err := h.Objects.PresignPost(req.Context(), key, ct, sc.limits.MaxSize, sc.ttl)
	if err != nil {
		return ErrUnavailable.With(err)
	}
	r := h.ref(sc, key)
	r.Filename = uploads.SanitizeFilename(in.Filename)
	token, err := h.Sealer.Seal(refPurpose, r, sc.ttl)
	if err != nil {
		return ErrInternal.With(err)
	}
	return c.JSON(http.StatusCreated, PresignAnswer{
		OK: true, URL: post.URL, Fields: post.Fields, Ref: token, MaxSize: sc.limits.MaxSize,
		ExpiresAt: h.now().Add(sc.ttl).UTC().Truncate(time.Second),
	})
}

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
	var r uploadRef
	if h.Objects == nil || h.Sealer == nil || h.Sealer.Open(refPurpose, token, &r) != nil {
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
func (h *Handler) attachOpened(ctx context.Context, s *intake, u *actions.Upload, r uploadRef) error {
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
	if h.Claims != nil {
		// One submission has the file: the first to claim it, for as
		// long as the reference opens. A submission that is not accepted
		// gives its claims back (see abandon).
		ok, err := h.Claims.Claim(ctx, r.Key, s.sub.ID, h.claimTTL(r))
		if err != nil {
			return ErrUnavailable.With(err)
		}
		if !ok {
			f.errs.Add(u.Name, u.Label+": this uploaded file was already used by another submission; upload it again.")
			return nil
		}
		f.claimed = append(f.claimed, r.Key)
	}
	// The size, type and ETag come from one response: the copy below
	// takes that version of the object or none.
	snap, err := h.Objects.Snapshot(ctx, r.Key)
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
	err = h.Objects.CopyChecked(ctx, r.Key, snap.ETag, obj)
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
	if err := h.Files.Delete(dctx, f.staged...); err != nil {
		h.Log.WarnContext(ctx, "could not delete used staged uploads; the janitor will", "keys", f.staged, "err", err)
	}
	f.staged = nil
}

// refusal is the field error of a file the store refused for its size or
// type; refused is false for other outcomes.
func refusal(u *actions.Upload, err error) (msg string, refused bool) {
	var typeErr *uploads.TypeError
	switch {
	case errors.Is(err, uploads.ErrTooLarge):
		return u.TooLargeMessage(), true
	case errors.As(err, &typeErr):
		return u.TypeMessage(typeErr.Sniffed), true
	}
	return "", false
}

// drain reads past the rest of a refused file, up to maxDrain, so that the
// fields after it are still read. drained is false when the file goes on
// beyond that, or beyond the body's limit: the caller stops reading and
// answers at once.
func drain(p io.Reader) (drained bool, err error) {
	_, err = io.CopyN(io.Discard, p, maxDrain)
	var tooBig *http.MaxBytesError
	switch {
	case err == io.EOF:
		return true, nil
	case err == nil, errors.As(err, &tooBig):
		return false, nil
	}
	return false, err
}

// skipRefused reads past a file the store refused. When the file is too
// long to read past, the submission stops reading (see stopped).
func (h *Handler) skipRefused(s *intake, p *uploads.Part) error {
	drained, err := drain(p)
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
	return closing(ErrValidation.withForm(s.a, s.form.errs, echoValues(s.a, s.form.values)))
}

// closing marks an answer sent before the body was read to its end: the
// connection closes after it.
func closing(e *Error) *Error {
	e.Header = map[string]string{echo.HeaderConnection: "close"}
	return e
}

// filesOf wraps staged keys for discard.
func filesOf(keys []string) []submission.File {
	files := make([]submission.File, len(keys))
	for i, k := range keys {
		files[i].Key = k
	}
	return files
}
