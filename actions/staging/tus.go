package staging

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/labstack/echo/v4"
	"github.com/oklog/ulid/v2"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	xslog "golang.org/x/exp/slog"
)

// TusPath is where resumable uploads (tus 1.0) are served: OPTIONS says
// the server's version, extensions and largest size, POST creates an
// upload, HEAD asks its offset, PATCH sends bytes from it and DELETE
// cancels it.
const TusPath = "/uploads/tus/"

// HeaderUploadRef carries the sealed upload reference of a completed
// resumable upload, on the answer to the request that completed it.
const HeaderUploadRef = "Formq-Upload-Ref"

// ErrUploadExpired answers a PATCH to a resumable upload older than its
// expiry: it cannot be resumed, only started again.
var ErrUploadExpired = &web.Error{Status: http.StatusGone, Code: "upload_expired", Message: "The upload expired before it was finished; start it again."}

// ErrUploadFinished answers a DELETE of a resumable upload whose last byte
// is stored: its reference may already be in a submission, so it is
// attached or expires, never cancelled.
var ErrUploadFinished = &web.Error{Status: http.StatusConflict, Code: "upload_finished", Message: "The upload is finished; it can no longer be cancelled, and expires unless a submission attaches it."}

// Metadata keys formq writes on a resumable upload, in place of what the
// client sent: the scope its limits come from and the file's name.
const (
	metaProfile  = "formq-profile"
	metaAction   = "formq-action"
	metaField    = "formq-field"
	metaFilename = "filename"
)

// resumable serves tus 1.0 with tusd's handler: formq checks the scope,
// origin, rate limit, auth and Upload-Length before tusd creates the
// upload, sniffs the file once it is complete and answers a sealed
// upload reference, as POST /uploads does. The upload's URL is its
// capability: HEAD, PATCH and DELETE need nothing else.
type resumable struct {
	h       *Handler
	tus     *tusd.UnroutedHandler
	expiry  time.Duration
	options http.Handler
	create  http.Handler
	head    http.Handler
	patch   http.Handler
	del     http.Handler
}

type tusScopeKey struct{}

// tusClientKey carries the creating client's address to preCreate.
type tusClientKey struct{}

// errTusTooSlow cuts a PATCH slower than the minimum rate. What arrived
// before is kept: the client may resume from the offset HEAD answers.
var errTusTooSlow = web.ErrTooSlow.With(uploads.ErrTooSlow,
	"The upload was too slow and was stopped; what arrived is kept: resume it from the offset HEAD answers, on a faster connection.")

// errTusUnfinished refuses a creation when the client has max unfinished
// resumable uploads already.
func errTusUnfinished(max int) *web.Error {
	e := web.ErrRateLimited.With(errors.New("unfinished resumable uploads per client"), fmt.Sprintf(
		"Too many unfinished resumable uploads from your address (at most %d); finish or cancel (DELETE) some, or wait for them to expire, and try again.", max))
	e.RetryAfter = time.Minute
	return e
}

// newResumable builds the tus side of h, on composer: tusd's S3 store,
// writing under submission.TusPrefix of formq's bucket, and a locker, so
// that a resumed request waits for the interrupted one to save what it
// received. It reads h's actions and profiles for the largest resumable
// max_size.
func newResumable(h *Handler, composer *tusd.StoreComposer, expiry time.Duration) (*resumable, error) {
	if composer == nil || expiry <= 0 {
		return nil, errors.New("resumable uploads: a store composer and an expiry are needed")
	}
	t := &resumable{h: h, expiry: expiry}
	idle := h.cfg.ReadIdle
	if idle <= 0 {
		idle = uploads.DefaultReadIdle
	}
	tus, err := tusd.NewUnroutedHandler(tusd.Config{
		StoreComposer: composer,
		BasePath:      TusPath,
		MaxSize:       h.maxResumable(),
		// Downloads go through the admin API, uploads end as a
		// reference: no GET or concatenation. DELETE cancels an
		// unfinished upload (see terminate).
		DisableDownload:      true,
		DisableConcatenation: true,
		// formq's CORS middleware answers for /uploads/tus/ with the
		// same origins as every route (see CORS).
		Cors:                       &tusd.CorsConfig{Disable: true},
		Logger:                     xslog.New(quiet{h.log.Handler()}),
		NetworkTimeout:             idle,
		PreUploadCreateCallback:    t.preCreate,
		PreFinishResponseCallback:  t.finish,
		PreUploadTerminateCallback: t.terminate,
	})
	if err != nil {
		return nil, fmt.Errorf("resumable uploads: %w", err)
	}
	t.tus = tus
	// tusd's middleware answers OPTIONS itself (Tus-Version,
	// Tus-Extension, Tus-Max-Size); nothing is behind it.
	t.options = tus.Middleware(http.NotFoundHandler())
	t.create = tus.Middleware(http.HandlerFunc(tus.PostFile))
	t.head = tus.Middleware(http.HandlerFunc(tus.HeadFile))
	t.patch = tus.Middleware(http.HandlerFunc(tus.PatchFile))
	t.del = tus.Middleware(http.HandlerFunc(tus.DelFile))
	return t, nil
}

// maxResumable is the largest max_size of a resumable profile or field.
func (h *Handler) maxResumable() int64 {
	var n int64
	for _, p := range h.cfg.Profiles {
		if p.Resumable {
			n = max(n, p.MaxSize)
		}
	}
	if h.actions != nil {
		for _, name := range h.actions.Names() {
			a, _ := h.actions.Get(name)
			for _, u := range a.Uploads {
				if u.Resumable {
					n = max(n, u.MaxSize)
				}
			}
		}
	}
	return n
}

// TusCreate handles POST /uploads/tus/: the scope (?profile= or
// ?action=&field=) must be resumable, the request pass its origin, rate
// limit and auth, and Upload-Length fit the scope's max_size; then tusd
// creates the upload.
func (h *Handler) TusCreate(c echo.Context) error {
	t := h.resumable
	if t == nil {
		return web.ErrNotFound.With(nil, "Resumable uploads are not available.")
	}
	req := c.Request()
	q := req.URL.Query()
	sc, err := h.uploadScope(q.Get("profile"), q.Get("action"), q.Get("field"))
	if err != nil {
		return err
	}
	if !sc.limits.Resumable {
		return web.ErrNotFound.With(nil, "This upload profile or field does not take resumable uploads; send the file with POST /uploads, or mark it resumable: true.")
	}
	if err := h.admitUpload(c, sc); err != nil {
		return err
	}
	if req.Header.Get("Upload-Concat") != "" || req.Header.Get("Upload-Defer-Length") != "" {
		return web.ErrBadRequest.With(nil, "Send the file's size in Upload-Length; deferred lengths and concatenation are not supported.")
	}
	size, err := strconv.ParseInt(req.Header.Get("Upload-Length"), 10, 64)
	if err != nil || size < 0 {
		return web.ErrBadRequest.With(err, "Send the file's size in bytes in Upload-Length.")
	}
	if size > sc.limits.MaxSize {
		return web.ErrPayloadTooLarge.With(nil, fmt.Sprintf("The file is over the limit of %s.", actions.FormatSize(sc.limits.MaxSize)))
	}
	req.Header.Del("X-HTTP-Method-Override")
	ctx := context.WithValue(context.WithValue(req.Context(), tusScopeKey{}, sc), tusClientKey{}, c.RealIP())
	req = req.WithContext(ctx)
	if req.ContentLength != 0 { // creation with upload: the body is a PATCH's
		release, err := h.admitBody(req)
		if err != nil {
			return err
		}
		defer release()
	}
	serveTus(t.create, &locationWriter{ResponseWriter: c.Response(), base: h.site.Base()}, req)
	return nil
}

// admitBody holds the body of a request that sends bytes of a resumable
// upload to the upload admission of every other upload: it waits for a
// part buffer of the client's share (503 with Retry-After when none comes
// free in time, nothing written) and keeps it until release, and the body
// must keep the minimum rate (408 too_slow, what arrived is kept).
func (h *Handler) admitBody(req *http.Request) (release func(), err error) {
	paced, release, err := h.store.Admit(req.Context(), req.Body)
	if err != nil {
		return nil, web.AsError(err)
	}
	req.Body = pacedBody{r: paced, Closer: req.Body}
	return release, nil
}

// pacedBody is a request body read through the upload admission; a body
// too slow ends with the error tusd answers.
type pacedBody struct {
	r io.Reader
	io.Closer
}

func (b pacedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, uploads.ErrTooSlow) {
		err = tusError(errTusTooSlow)
	}
	return n, err
}

// TusOptions handles OPTIONS /uploads/tus/ and /uploads/tus/{id}: tus's
// discovery, answered by tusd (Tus-Version, Tus-Extension, Tus-Max-Size:
// the largest resumable max_size). A CORS preflight is answered before.
func (h *Handler) TusOptions(c echo.Context) error {
	t := h.resumable
	if t == nil {
		return web.ErrNotFound.With(nil, "Resumable uploads are not available.")
	}
	serveTus(t.options, c.Response(), c.Request())
	return nil
}

// TusHead handles HEAD /uploads/tus/{id}: the upload's offset. An expired
// upload answers 410 and one that is gone (attached to a submission,
// cancelled or swept) 404, so a tus client starts the file again.
func (h *Handler) TusHead(c echo.Context) error { return h.tusResume(c, http.MethodHead) }

// TusPatch handles PATCH /uploads/tus/{id}: bytes from the offset.
func (h *Handler) TusPatch(c echo.Context) error { return h.tusResume(c, http.MethodPatch) }

// TusDelete handles DELETE /uploads/tus/{id} (tus's termination): the
// uploader cancels an unfinished upload, by its URL as for HEAD and
// PATCH; tusd deletes what was stored and aborts the multipart upload.
func (h *Handler) TusDelete(c echo.Context) error { return h.tusResume(c, http.MethodDelete) }

func (h *Handler) tusResume(c echo.Context, method string) error {
	t := h.resumable
	if t == nil {
		return web.ErrNotFound.With(nil, "Resumable uploads are not available.")
	}
	id := c.Param("id")
	created, ok := tusCreated(id)
	if !ok {
		return web.ErrNotFound.With(nil, "No such upload.")
	}
	expires := created.Add(t.expiry)
	if method != http.MethodDelete && !h.now().Before(expires) {
		return ErrUploadExpired
	}
	c.Response().Header().Set("Upload-Expires", expires.UTC().Format(http.TimeFormat))
	// tusd takes the id from the path, with the base path stripped.
	req := c.Request()
	r := *req
	u := *req.URL
	u.Path, u.RawPath = id, ""
	r.URL = &u
	if method == http.MethodPatch {
		release, err := h.admitBody(&r)
		if err != nil {
			return err
		}
		defer release()
	}
	next := map[string]http.Handler{http.MethodHead: t.head, http.MethodPatch: t.patch, http.MethodDelete: t.del}[method]
	serveTus(next, c.Response(), &r)
	return nil
}

// terminate lets DELETE cancel an upload only while it is unfinished: a
// finished one has given out its reference, which a submission may be
// attaching.
func (t *resumable) terminate(ev tusd.HookEvent) (tusd.HTTPResponse, error) {
	if !ev.Upload.SizeIsDeferred && ev.Upload.Offset >= ev.Upload.Size {
		return tusd.HTTPResponse{}, tusError(ErrUploadFinished)
	}
	t.uncount(ev)
	return tusd.HTTPResponse{}, nil
}

// uncount stops counting an upload among its client's unfinished ones.
func (t *resumable) uncount(ev tusd.HookEvent) {
	if t.h.cfg.TusUploads == nil {
		return
	}
	object, _, _ := strings.Cut(ev.Upload.ID, "+")
	if err := t.h.cfg.TusUploads.End(ev.Context, object); err != nil {
		t.h.log.WarnContext(ev.Context, "could not count a resumable upload out of its client's unfinished ones; it counts until it expires", "upload", object, "err", err)
	}
}

// tusCreated is when the upload with a tus id ("{ulid}+{multipart id}")
// was created.
func tusCreated(id string) (time.Time, bool) {
	object, multipart, ok := strings.Cut(id, "+")
	if !ok || multipart == "" {
		return time.Time{}, false
	}
	u, err := ulid.ParseStrict(object)
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(u.Time()), true
}

// preCreate names the upload (a ULID from crypto/rand, so the URL cannot
// be guessed) and replaces the client's metadata with the scope and the
// sanitized file name.
func (t *resumable) preCreate(ev tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
	sc, ok := ev.Context.Value(tusScopeKey{}).(*uploadScope)
	if !ok {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(web.ErrBadRequest.With(nil, "Create resumable uploads with POST "+TusPath+"?profile=NAME or ?action=NAME&field=FIELD."))
	}
	id, err := ulid.New(ulid.Now(), rand.Reader)
	if err != nil {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, err
	}
	meta := tusd.MetaData{}
	for k, v := range map[string]string{
		metaProfile: sc.profile, metaAction: sc.action, metaField: sc.field,
		metaFilename: uploads.SanitizeFilename(ev.Upload.MetaData[metaFilename]),
	} {
		if v != "" {
			meta[k] = v
		}
	}
	expires := ulid.Time(id.Time()).Add(t.expiry)
	if counter := t.h.cfg.TusUploads; counter != nil {
		client, _ := ev.Context.Value(tusClientKey{}).(string)
		max := cmp.Or(t.h.cfg.TusClientUploads, DefaultTusClientUploads)
		switch ok, err := counter.Begin(ev.Context, client, id.String(), max, expires); {
		case err != nil:
			return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(web.ErrUnavailable.With(err))
		case !ok:
			return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errTusUnfinished(max))
		}
	}
	header := tusd.HTTPHeader{"Upload-Expires": expires.UTC().Format(http.TimeFormat)}
	return tusd.HTTPResponse{Header: header}, tusd.FileInfoChanges{ID: id.String(), MetaData: meta}, nil
}

// finish runs once the last byte is stored: the file's type is sniffed
// from the object and checked against the scope, and the answer carries
// the sealed reference (header, and the JSON of POST /uploads on PATCH).
// A refused file is deleted.
func (t *resumable) finish(ev tusd.HookEvent) (tusd.HTTPResponse, error) {
	t.uncount(ev)
	h := t.h
	ctx := ev.Context
	info := ev.Upload
	object, _, _ := strings.Cut(info.ID, "+")
	key := submission.TusKey(object)
	md := info.MetaData
	sc, err := h.uploadScope(md[metaProfile], md[metaAction], md[metaField])
	if err != nil {
		t.drop(ctx, object)
		return tusd.HTTPResponse{}, tusError(web.AsError(err))
	}
	field := sc.field
	if field == "" {
		field = "file"
	}
	snap, err := h.store.Snapshot(ctx, key)
	if err != nil {
		return tusd.HTTPResponse{}, tusError(web.ErrUnavailable.With(err))
	}
	sniffed := uploads.Sniff(snap.Head)
	if !uploads.TypeAllowed(sniffed, sc.limits.Types) {
		t.drop(ctx, object)
		return tusd.HTTPResponse{}, tusError(web.ErrValidation.WithForm(nil, actions.FieldErrors{field: {sc.limits.TypeMessage(sniffed)}}, nil))
	}
	if info.Size > sc.limits.MaxSize { // the profile changed since creation
		t.drop(ctx, object)
		return tusd.HTTPResponse{}, tusError(web.ErrValidation.WithForm(nil, actions.FieldErrors{field: {sc.limits.TooLargeMessage()}}, nil))
	}
	r := h.ref(sc, key)
	r.Size, r.ContentType, r.Filename = info.Size, sniffed, md[metaFilename]
	token, err := SealRef(h.sealer, r, sc.ttl)
	if err != nil {
		return tusd.HTTPResponse{}, tusError(web.ErrInternal.With(err))
	}
	body, _ := json.Marshal(StagedAnswer{OK: true, Uploads: []StagedUpload{{
		Ref: token, Field: field, Size: info.Size, ContentType: sniffed, Filename: r.Filename,
		ExpiresAt: h.now().Add(sc.ttl).UTC().Truncate(time.Second),
	}}})
	if ev.HTTPRequest.Method == http.MethodPost {
		// Completed by its creation request (creation-with-upload): the
		// answer stays tus's bodiless 201; the header has the reference.
		return tusd.HTTPResponse{Header: tusd.HTTPHeader{HeaderUploadRef: token}}, nil
	}
	return tusd.HTTPResponse{StatusCode: http.StatusOK, Body: string(body) + "\n", Header: tusd.HTTPHeader{
		"Content-Type": echo.MIMEApplicationJSON, HeaderUploadRef: token,
	}}, nil
}

// drop deletes a refused upload's file and tusd's objects beside it.
func (t *resumable) drop(ctx context.Context, object string) {
	key := submission.TusKey(object)
	if err := t.h.store.Delete(ctx, key, key+submission.TusInfoSuffix, key+submission.TusPartSuffix); err != nil {
		t.h.log.WarnContext(ctx, "could not delete a refused resumable upload; the janitor will", "key", key, "err", err)
	}
}

// tusError turns a contract error into the tusd error that answers it,
// with the contract's JSON body.
func tusError(e *web.Error) error {
	body, _ := json.Marshal(web.Body(e))
	header := tusd.HTTPHeader{"Content-Type": echo.MIMEApplicationJSON}
	for k, v := range e.Header {
		header[k] = v
	}
	if e.RetryAfter > 0 {
		header["Retry-After"] = strconv.Itoa(int((e.RetryAfter + time.Second - 1) / time.Second))
	}
	return tusd.Error{ErrorCode: e.Code, Message: e.Message, HTTPResponse: tusd.HTTPResponse{
		StatusCode: e.Status, Body: string(body) + "\n", Header: header,
	}}
}

// locationWriter puts the API's base (its public URL, or the prefix it
// is mounted under) into the Location tusd answers on creation.
type locationWriter struct {
	http.ResponseWriter
	base  string
	wrote bool
}

func (w *locationWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if loc := w.Header().Get(echo.HeaderLocation); loc != "" && w.base != "" {
			w.Header().Set(echo.HeaderLocation, rebase(loc, w.base))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *locationWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *locationWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rebase moves an upload URL tusd made (scheme://host/uploads/tus/{id})
// under base: an absolute URL replaces scheme and host, a path prefixes.
func rebase(loc, base string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	if strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://") {
		return strings.TrimRight(base, "/") + u.Path
	}
	u.Path = strings.TrimRight(base, "/") + u.Path
	return u.String()
}

// quiet passes tusd's warnings and errors on to formq's log, not its
// line per request. tusd logs through golang.org/x/exp/slog.
type quiet struct{ h slog.Handler }

func (q quiet) Enabled(ctx context.Context, l xslog.Level) bool {
	return l >= xslog.LevelWarn && q.h.Enabled(ctx, slog.Level(l))
}

func (q quiet) Handle(ctx context.Context, r xslog.Record) error {
	level := slog.Level(r.Level)
	if r.Message == "BodyReadError" {
		// A client that dropped its connection resumes later: that is
		// what tus is for, not an error of the service.
		if level = slog.LevelDebug; !q.h.Enabled(ctx, level) {
			return nil
		}
	}
	rec := slog.NewRecord(r.Time, level, "tusd: "+r.Message, r.PC)
	r.Attrs(func(a xslog.Attr) bool {
		rec.AddAttrs(redactTusAttr(a))
		return true
	})
	return q.h.Handle(ctx, rec)
}

// redactTusAttr keeps an upload's URL or id out of the log but for its
// object id: the whole of it (id+multipart id) is the capability that
// lets anyone write the upload.
func redactTusAttr(a xslog.Attr) slog.Attr {
	if v, ok := a.Value.Any().(string); ok {
		if i := strings.IndexByte(v, '+'); i >= 0 && (a.Key == "id" || a.Key == "path" || a.Key == "url" || a.Key == "upload" || strings.Contains(v, "/")) {
			return slog.String(a.Key, v[:i]+"+…")
		}
	}
	return slog.Any(a.Key, a.Value.Any())
}

func (q quiet) WithAttrs(as []xslog.Attr) xslog.Handler {
	attrs := make([]slog.Attr, len(as))
	for i, a := range as {
		attrs[i] = redactTusAttr(a)
	}
	return quiet{q.h.WithAttrs(attrs)}
}

func (q quiet) WithGroup(n string) xslog.Handler { return quiet{q.h.WithGroup(n)} }
