package uploads

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/formq/formq/submission"
	"github.com/oklog/ulid/v2"
)

// Janitor removes what crashes leave behind in the bucket: upload objects
// of submissions that were never accepted, staged uploads nobody used, and
// multipart uploads never completed or aborted. Everything younger than
// MinAge is left alone, so nothing an API process is still writing, or a
// queued submission not yet recorded, is touched.
type Janitor struct {
	Store *Store
	// MinAge is the age below which nothing is removed.
	MinAge time.Duration
	// StagedAge is how long a staged upload is kept: at least the lifetime
	// of the references to it.
	StagedAge time.Duration
	// TusExpiry is how long an unfinished resumable (tus) upload may be
	// resumed: after it, its multipart upload is aborted and tusd's .info
	// and .part objects are deleted. A completed one is kept StagedAge
	// more, for the references to it. MinAge when 0.
	TusExpiry time.Duration
	// PartialAge is how long a partial object (submission.PartialPrefix)
	// is kept: one only lives from the end of its PUT to the end of its
	// copy into place, so an older one is the remains of a cut upload.
	// The smaller of MinAge and DefaultPartialAge when 0.
	PartialAge time.Duration
	// Keep reports whether a submission's files must stay: its record
	// exists, or its task is still queued (the worker writes the record
	// only when it runs the task). An error keeps the files this time.
	Keep func(ctx context.Context, action, submission string) (bool, error)
	Log  *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// DefaultPartialAge is the age after which the janitor removes a partial
// object, unless Janitor.MinAge is smaller.
const DefaultPartialAge = 10 * time.Minute

// Sweep is what one pass of the janitor did.
type Sweep struct {
	Checked  int // upload objects looked at
	Deleted  int // objects removed
	Aborted  int // multipart uploads aborted
	Problems int // errors met and skipped
}

// Run sweeps every interval until ctx ends. claim, when not nil, is asked
// before each sweep so that only one process of a fleet sweeps at a time.
func (j *Janitor) Run(ctx context.Context, interval time.Duration, claim func(context.Context) bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if claim == nil || claim(ctx) {
			s, err := j.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				j.Log.WarnContext(ctx, "janitor sweep failed", "err", err)
			} else if s.Deleted+s.Aborted+s.Problems > 0 {
				j.Log.InfoContext(ctx, "janitor swept", "checked", s.Checked, "deleted", s.Deleted, "aborted", s.Aborted, "problems", s.Problems)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep makes one pass over the uploads and the unfinished multipart
// uploads.
func (j *Janitor) Sweep(ctx context.Context) (Sweep, error) {
	var s Sweep
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	cutoff := now().Add(-j.MinAge)
	stagedCutoff := now().Add(-max(j.StagedAge, j.MinAge))
	partialCutoff := now().Add(-cmp.Or(j.PartialAge, min(j.MinAge, DefaultPartialAge)))
	// Objects are listed in key order, so a submission's files come
	// together: one Keep call per submission.
	var lastSub string
	var keepLast bool
	tus := j.tusSweep(now())
	err := j.Store.Walk(ctx, submission.UploadsPrefix, func(o Listed) error {
		s.Checked++
		if strings.HasPrefix(o.Key, submission.TusPrefix) {
			if tus.expired(o) {
				j.remove(ctx, o.Key, &s)
			}
			return nil
		}
		if strings.HasPrefix(o.Key, submission.PartialPrefix) {
			if o.LastModified.Before(partialCutoff) {
				j.remove(ctx, o.Key, &s)
			}
			return nil
		}
		if strings.HasPrefix(o.Key, submission.StagedPrefix) {
			if o.LastModified.Before(stagedCutoff) {
				j.remove(ctx, o.Key, &s)
			}
			return nil
		}
		if !o.LastModified.Before(cutoff) {
			return nil
		}
		place, ok := submission.ParseUploadKey(o.Key)
		action, sub := place.Action, place.ID
		if !ok {
			return nil // not ours: leave it
		}
		if id := action + "/" + sub; id != lastSub {
			keep, err := j.Keep(ctx, action, sub)
			if err != nil {
				s.Problems++
				j.Log.WarnContext(ctx, "janitor: cannot tell whether a submission exists; keeping its files", "submission", sub, "err", err)
				keep = true
			}
			lastSub, keepLast = id, keep
		}
		if !keepLast {
			j.remove(ctx, o.Key, &s)
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("janitor: %w", err)
	}
	ups, err := j.Store.MultipartUploads(ctx, submission.UploadsPrefix)
	if err != nil {
		return s, fmt.Errorf("janitor: %w", err)
	}
	for _, u := range ups {
		if strings.HasPrefix(u.Key, submission.TusPrefix) {
			// A resumable upload is unfinished by design until it expires.
			if !tus.created(u.Key, u.Initiated).Before(tus.unfinished) {
				continue
			}
		} else if !u.Initiated.Before(cutoff) {
			continue
		}
		if err := j.Store.AbortMultipart(ctx, u); err != nil {
			s.Problems++
			j.Log.WarnContext(ctx, "janitor: abort failed", "key", u.Key, "err", err)
			continue
		}
		s.Aborted++
	}
	return s, nil
}

func (j *Janitor) remove(ctx context.Context, key string, s *Sweep) {
	if err := j.Store.Delete(ctx, key); err != nil {
		s.Problems++
		j.Log.WarnContext(ctx, "janitor: delete failed", "key", key, "err", err)
		return
	}
	s.Deleted++
	j.Log.DebugContext(ctx, "janitor: deleted an orphaned upload", "key", key)
}

// tusRule decides which objects of resumable uploads go. Objects are
// listed in key order, so an upload's file ({id}) comes before its .info
// and .part: an upload whose file was seen is complete.
type tusRule struct {
	unfinished time.Time // unfinished uploads created before it go
	completed  time.Time // completed uploads created before it go
	lastDone   string    // id of the last completed upload seen
}

func (j *Janitor) tusSweep(now time.Time) *tusRule {
	expiry := j.TusExpiry
	if expiry <= 0 {
		expiry = j.MinAge
	}
	return &tusRule{unfinished: now.Add(-expiry), completed: now.Add(-expiry - max(j.StagedAge, j.MinAge))}
}

// created is when a resumable upload began: the time in its ULID, or
// fallback for a key formq did not name.
func (r *tusRule) created(key string, fallback time.Time) time.Time {
	id, _, ok := submission.ParseTusKey(key)
	if !ok {
		return fallback
	}
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return fallback
	}
	return ulid.Time(u.Time())
}

func (r *tusRule) expired(o Listed) bool {
	id, suffix, ok := submission.ParseTusKey(o.Key)
	if !ok {
		return false // not ours: leave it
	}
	if suffix == "" {
		r.lastDone = id
	}
	created := r.created(o.Key, o.LastModified)
	if id == r.lastDone {
		return created.Before(r.completed)
	}
	return created.Before(r.unfinished)
}
