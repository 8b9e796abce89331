// Package staging serves uploads staged before a submission: files sent
// to POST /uploads, direct uploads to S3 by a presigned POST, and
// resumable uploads (tus). Each ends as a sealed reference a submission
// sends in place of the file.
package staging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/captcha"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
	"github.com/oklog/ulid/v2"
	tusd "github.com/tus/tusd/v2/pkg/handler"
)

// refPurpose binds sealed upload references to their use.
const refPurpose = "upload-ref"

// maxDrain is how much of a refused file is read past so that the answer
// can still list the form's other problems; beyond it the read stops and
// the connection is closed after the answer.
const maxDrain = 16 << 20

// Store is what staging needs of the S3 store; *uploads.Store is the
// implementation.
type Store interface {
	Put(ctx context.Context, key string, src io.Reader, o uploads.PutOptions) (uploads.Object, error)
	Delete(ctx context.Context, keys ...string) error
	Snapshot(ctx context.Context, key string) (uploads.Snapshot, error)
	PresignPost(ctx context.Context, key, contentType string, maxSize int64, ttl time.Duration) (uploads.PresignedPost, error)
	// Admit holds a body tusd reads (a resumable upload's PATCH) to the
	// upload admission: a part buffer of the client's share, the
	// minimum rate.
	Admit(ctx context.Context, body io.Reader) (paced io.Reader, release func(), err error)
}

// TusCounter counts each client's unfinished resumable uploads on every
// API process; *redisstate.TusUploads is the implementation. Begin counts
// a new upload (its object id) until it expires unless the client has max
// already (false); End stops counting one that was finished or cancelled.
type TusCounter interface {
	Begin(ctx context.Context, client, upload string, max int, expires time.Time) (bool, error)
	End(ctx context.Context, upload string) error
}

// DefaultTusClientUploads is how many unfinished resumable uploads one
// client may have at once when the configuration says nothing.
const DefaultTusClientUploads = 20

var _ Store = (*uploads.Store)(nil)

// Config is what staging takes from the deployment and the actions file.
type Config struct {
	// Profiles are the actions file's upload_profiles.
	Profiles actions.UploadProfiles
	// ReaderLimits bound multipart bodies.
	ReaderLimits uploads.ReaderLimits
	// ReadIdle is how long a request body may send nothing;
	// uploads.DefaultReadIdle when 0.
	ReadIdle time.Duration
	// Tus holds tusd's S3 store and a locker for resumable uploads; nil
	// leaves TusPath answering 404.
	Tus *tusd.StoreComposer
	// TusExpiry is how long an unfinished resumable upload may be
	// resumed; needed with Tus.
	TusExpiry time.Duration
	// TusUploads counts each client's unfinished resumable uploads, on
	// every API process; a creation over TusClientUploads
	// (DefaultTusClientUploads when 0) is refused. Nil counts none.
	TusUploads       TusCounter
	TusClientUploads int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Captcha admits the pre-upload requests of actions with a captcha;
	// nil refuses them all (nothing is stored before a verified answer).
	Captcha UploadCaptcha
}

// UploadCaptcha checks the captcha answer, or the grant of an earlier
// one, that a pre-upload request of a captcha action carries;
// *captcha.Verifier is the implementation. It answers the grant that
// stands in for a spent answer ("" for a grant) or a *captcha.Refusal.
type UploadCaptcha interface {
	AdmitUpload(ctx context.Context, a *actions.Action, value, remoteIP string) (string, error)
}

var _ UploadCaptcha = (*captcha.Verifier)(nil)

// Headers of the captcha gate on the pre-upload routes: the request sends
// the widget's answer (or a grant) in HeaderCaptcha; the answer to a
// spent widget answer carries the grant in HeaderCaptchaGrant.
const (
	HeaderCaptcha      = "Formq-Captcha"
	HeaderCaptchaGrant = "Formq-Captcha-Grant"
)

// Handler serves POST /uploads, POST /uploads/presign and the tus
// endpoints under TusPath.
type Handler struct {
	cfg       Config
	actions   *actions.Registry
	store     Store
	sealer    actions.Sealer
	gate      *web.Gate
	site      *web.Site
	log       *slog.Logger
	resumable *resumable
}

// New builds the staging endpoints. store may be nil (no uploads: tests
// of other endpoints); gate and site take defaults when nil.
func New(cfg Config, reg *actions.Registry, store Store, sealer actions.Sealer, gate *web.Gate, site *web.Site, log *slog.Logger) (*Handler, error) {
	if reg == nil {
		reg = actions.NewRegistry()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if gate == nil {
		gate = web.NewGate(web.GateConfig{}, nil, nil, nil, log)
	}
	if site == nil {
		site = web.NewSite(web.SiteConfig{})
	}
	h := &Handler{cfg: cfg, actions: reg, store: store, sealer: sealer, gate: gate, site: site, log: log}
	if cfg.Tus != nil {
		t, err := newResumable(h, cfg.Tus, cfg.TusExpiry)
		if err != nil {
			return nil, err
		}
		h.resumable = t
	}
	return h, nil
}

func (h *Handler) now() time.Time {
	if h.cfg.Now != nil {
		return h.cfg.Now()
	}
	return time.Now()
}

// Ref is what an upload reference carries, sealed: where the staged
// file is and the limits it was taken under. Size, ContentType and SHA256
// are known for files that went through POST /uploads, not for presigned
// direct uploads, whose size and type are checked when they are used.
type Ref struct {
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

// SealRef seals a reference for ttl.
func SealRef(sealer actions.Sealer, r Ref, ttl time.Duration) (string, error) {
	return sealer.Seal(refPurpose, r, ttl)
}

// ErrNoSealer means references cannot be opened: no sealer is configured.
var ErrNoSealer = errors.New("staging: no sealer for upload references")

// OpenRef opens a sealed reference.
func OpenRef(sealer actions.Sealer, token string) (Ref, error) {
	var r Ref
	if sealer == nil {
		return r, ErrNoSealer
	}
	err := sealer.Open(refPurpose, token, &r)
	return r, err
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
		p, ok := h.cfg.Profiles[profile]
		if !ok {
			return nil, web.ErrNotFound.With(nil, "No such upload profile.")
		}
		return &uploadScope{limits: &p.Upload, ttl: p.TTL, profile: profile, gate: p.Gate}, nil
	case action != "" && field != "":
		a, ok := h.actions.Get(action)
		if !ok {
			return nil, web.ErrActionNotFound
		}
		u := a.Upload(field)
		if u == nil {
			return nil, web.ErrNotFound.With(nil, "The action has no such upload field.")
		}
		return &uploadScope{limits: u, ttl: actions.DefaultUploadRefTTL, action: action, field: field, gate: a}, nil
	}
	return nil, web.ErrBadRequest.With(nil, "Name an upload profile (profile=) or an action and its upload field (action= and field=).")
}

// admitUpload holds staging to the origins, rate limit and auth of the
// action whose field it is for, or of the profile.
func (h *Handler) admitUpload(c echo.Context, sc *uploadScope) error {
	if err := h.gate.Admit(c, sc.gate); err != nil {
		return err
	}
	if _, err := h.gate.Authenticate(sc.gate, c.Request()); err != nil {
		return err
	}
	return h.admitCaptcha(c, sc.gate)
}

// admitCaptcha holds a pre-upload request of an action with a captcha to
// a verified answer or a grant, before anything is stored.
func (h *Handler) admitCaptcha(c echo.Context, a *actions.Action) error {
	if a == nil || a.Captcha == nil {
		return nil
	}
	if h.cfg.Captcha == nil {
		return web.ErrInternal.With(fmt.Errorf("action %s has a captcha but uploads have no captcha gate", a.Name))
	}
	ctx := c.Request().Context()
	grant, err := h.cfg.Captcha.AdmitUpload(ctx, a, c.Request().Header.Get(HeaderCaptcha), c.RealIP())
	var refusal *captcha.Refusal
	switch {
	case err == nil:
		if grant != "" {
			c.Response().Header().Set(HeaderCaptchaGrant, grant)
		}
		return nil
	case errors.As(err, &refusal):
		h.log.InfoContext(ctx, "captcha refused an upload", "action", a.Name, "codes", refusal.Codes)
		return web.ErrValidation.WithForm(a, actions.FieldErrors{captcha.ErrorKey: {refusal.Message}}, nil)
	case a.Captcha.AllowOnError && errors.Is(err, captcha.ErrUnreachable):
		h.log.WarnContext(ctx, "captcha provider unreachable; accepting an upload without a check (on_error: allow)", "action", a.Name, "err", err)
		return nil
	case errors.Is(err, captcha.ErrUnreachable), errors.Is(err, captcha.ErrProviderRefused):
		return web.ErrUnavailable.With(err, "The spam check is briefly unavailable; nothing was saved. Try again shortly.")
	default:
		return web.ErrInternal.With(err)
	}
}

func (h *Handler) ref(sc *uploadScope, key string) Ref {
	return Ref{Key: key, Profile: sc.profile, Action: sc.action, Field: sc.field, MaxSize: sc.limits.MaxSize, Types: sc.limits.Types,
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
		return web.ErrUnsupportedMedia.With(err, "Send the files as multipart/form-data.")
	}
	maxBody := sc.limits.MaxSize*int64(sc.limits.MaxFiles) + 1<<20
	if req.ContentLength > maxBody {
		return web.ErrPayloadTooLarge.With(nil, fmt.Sprintf("The request is over the limit of %s.", actions.FormatSize(maxBody)))
	}
	req.Body = uploads.NewBodyReader(req.Context(), c.Response(), http.MaxBytesReader(c.Response(), req.Body, maxBody), h.cfg.ReadIdle)
	mr, err := uploads.NewMultipartReader(req.Body, req.Header.Get(echo.HeaderContentType), h.cfg.ReaderLimits)
	if err == nil {
		mr.SetLength(req.ContentLength)
	}
	if err != nil {
		return web.ErrBadRequest.With(err, "The multipart body has no boundary.")
	}

	var (
		stored []StagedUpload
		keys   []string
		errs   = actions.FieldErrors{}
		files  int
	)
	discard := func() { h.discard(ctx, keys) }
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
		obj, err := h.store.Put(ctx, key, p, uploads.PutOptions{MaxSize: sc.limits.MaxSize, Types: sc.limits.Types, Filename: p.Filename})
		if msg, refused := Refusal(sc.limits, err); refused {
			errs.Add(p.Field, msg)
			drained, derr := Drain(p)
			if derr != nil {
				discard()
				return derr
			}
			if !drained {
				discard()
				return web.Closing(web.ErrValidation.WithForm(nil, errs, nil))
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
		token, err := SealRef(h.sealer, r, sc.ttl)
		if err != nil {
			discard()
			return web.ErrInternal.With(err)
		}
		stored = append(stored, StagedUpload{
			Ref: token, Field: p.Field, Size: obj.Size, ContentType: obj.ContentType,
			SHA256: obj.SHA256, Filename: obj.Filename, ExpiresAt: h.now().Add(sc.ttl).UTC().Truncate(time.Second),
		})
	}
	if len(errs) > 0 {
		discard()
		return web.ErrValidation.WithForm(nil, errs, nil)
	}
	if len(stored) == 0 {
		return web.ErrValidation.WithForm(nil, actions.FieldErrors{"file": {"Choose a file to upload."}}, nil)
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
		return web.ErrBadRequest.With(err, "Send a JSON object like {\"profile\": \"avatars\", \"contentType\": \"image/png\"}.")
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
		return web.ErrValidation.WithForm(nil, actions.FieldErrors{"contentType": {"Give the file's content type, like image/png."}}, nil)
	}
	if !uploads.TypeAllowed(ct, sc.limits.Types) {
		return web.ErrValidation.WithForm(nil, actions.FieldErrors{"contentType": {sc.limits.TypeMessage(ct)}}, nil)
	}
	if h.store == nil {
		return web.ErrNotFound.With(nil, "Direct uploads are not available.")
	}
	key := submission.StagedKey(ulid.Make().String())
	post, err := h.store.PresignPost(req.Context(), key, ct, sc.limits.MaxSize, sc.ttl)
	if err != nil {
		return web.ErrUnavailable.With(err)
	}
	r := h.ref(sc, key)
	r.Filename = uploads.SanitizeFilename(in.Filename)
	token, err := SealRef(h.sealer, r, sc.ttl)
	if err != nil {
		return web.ErrInternal.With(err)
	}
	return c.JSON(http.StatusCreated, PresignAnswer{
		OK: true, URL: post.URL, Fields: post.Fields, Ref: token, MaxSize: sc.limits.MaxSize,
		ExpiresAt: h.now().Add(sc.ttl).UTC().Truncate(time.Second),
	})
}

// Refusal is the field error of a file the store refused for its size or
// type; refused is false for other outcomes.
func Refusal(u *actions.Upload, err error) (msg string, refused bool) {
	var typeErr *uploads.TypeError
	switch {
	case errors.Is(err, uploads.ErrTooLarge):
		return u.TooLargeMessage(), true
	case errors.As(err, &typeErr):
		return u.TypeMessage(typeErr.Sniffed), true
	}
	return "", false
}

// Drain reads past the rest of a refused file, up to maxDrain, so that the
// fields after it are still read. drained is false when the file goes on
// beyond that, or beyond the body's limit: the caller stops reading and
// answers at once.
func Drain(p io.Reader) (drained bool, err error) {
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

// discard deletes staged files of a refused upload. It runs even when
// the request's context has ended (the client went away).
func (h *Handler) discard(ctx context.Context, keys []string) {
	if len(keys) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := h.store.Delete(dctx, keys...); err != nil {
		h.log.ErrorContext(ctx, "could not delete the files of a refused submission; the janitor will", "keys", keys, "err", err)
	}
}
