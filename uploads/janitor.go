package uploads

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/formq/formq/internal/lifecycle"
	"github.com/formq/formq/submission"
	"github.com/oklog/ulid/v2"
)

// Janitor removes what crashes leave behind in the bucket: upload objects
// of submissions that were never accepted, staged uploads nobody used, and
// multipart uploads never completed or aborted. Everything younger than
// MinAge is left alone, so nothing an API process is still writing, or a
// queued submission not yet recorded, is touched. NewJanitor builds it,
// Run sweeps every Interval until its context ends or Close is called.
type Janitor struct {
	store *Store
	cfg   JanitorConfig
	loop  lifecycle.Loop
	clock func() time.Time // this process's clock, to read S3's against; time.Now
}

// JanitorConfig is what a janitor removes, and when.
type JanitorConfig struct {
	// Interval is the time between sweeps of Run.
	Interval time.Duration
	// Claim, when not nil, is asked before each sweep of Run so that only
	// one process of a fleet sweeps at a time.
	Claim func(context.Context) bool
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
	// Now is the moment a sweep judges at, as this process's clock reads
	// it; time.Now when nil (tests give a later moment). A sweep moves it
	// onto the S3 server's clock (Objects.ServerTime).
	Now func() time.Time
}

// ClockAllowance is what the janitor adds to a time another process
// wrote by its own clock (a resumable upload's id) before judging it on
// the S3 server's clock: the most a process's clock can be off S3's and
// still sign requests S3 accepts (Signature Version 4 refuses a request
// time more than 15 minutes off).
const ClockAllowance = 15 * time.Minute

// DefaultPartialAge is the age after which the janitor removes a partial
// object, unless Janitor.MinAge is smaller.
const DefaultPartialAge = 10 * time.Minute

// NewJanitor builds a janitor of store's bucket. It starts nothing.
func NewJanitor(store *Store, cfg JanitorConfig) *Janitor {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Janitor{store: store, cfg: cfg, clock: time.Now}
}

// Sweep is what one pass of the janitor did.
type Sweep struct {
	Checked  int // upload objects looked at
	Deleted  int // objects removed
	Aborted  int // multipart uploads aborted
	Problems int // errors met and skipped
}

// Run sweeps every Interval until ctx ends or Close is called.
func (j *Janitor) Run(ctx context.Context) error { return j.loop.Run(ctx, j.sweepEvery) }

// Close stops a Run under way and waits for it.
func (j *Janitor) Close() error { return j.loop.Close() }

func (j *Janitor) sweepEvery(ctx context.Context) {
	t := time.NewTicker(j.cfg.Interval)
	defer t.Stop()
	for {
		if j.cfg.Claim == nil || j.cfg.Claim(ctx) {
			s, err := j.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				j.cfg.Log.WarnContext(ctx, "janitor sweep failed", "err", err)
			} else if s.Deleted+s.Aborted+s.Problems > 0 {
				j.cfg.Log.InfoContext(ctx, "janitor swept", "checked", s.Checked, "deleted", s.Deleted, "aborted", s.Aborted, "problems", s.Problems)
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
// uploads. Ages are measured on the S3 server's clock, which stamped what
// is measured, so a worker whose clock is off removes nothing early.
func (j *Janitor) Sweep(ctx context.Context) (Sweep, error) {
	var s Sweep
	s3now, err := j.store.ServerTime(ctx)
	if err != nil {
		return s, fmt.Errorf("janitor: %w", err)
	}
	now := j.cfg.Now().Add(s3now.Sub(j.clock())) // on S3's clock
	cutoff := now.Add(-j.cfg.MinAge)
	stagedCutoff := now.Add(-max(j.cfg.StagedAge, j.cfg.MinAge))
	partialCutoff := now.Add(-cmp.Or(j.cfg.PartialAge, min(j.cfg.MinAge, DefaultPartialAge)))
	// Objects are listed in key order, so a submission's files come
	// together: one Keep call per submission.
	var lastSub string
	var keepLast bool
	tus := j.tusSweep(now)
	err = j.store.Walk(ctx, submission.UploadsPrefix, func(o Listed) error {
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
			keep, err := j.cfg.Keep(ctx, action, sub)
			if err != nil {
				s.Problems++
				j.cfg.Log.WarnContext(ctx, "janitor: cannot tell whether a submission exists; keeping its files", "submission", sub, "err", err)
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
	ups, err := j.store.MultipartUploads(ctx, submission.UploadsPrefix)
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
		if err := j.store.AbortMultipart(ctx, u); err != nil {
			s.Problems++
			j.cfg.Log.WarnContext(ctx, "janitor: abort failed", "key", u.Key, "err", err)
			continue
		}
		s.Aborted++
	}
	return s, nil
}

func (j *Janitor) remove(ctx context.Context, key string, s *Sweep) {
	if err := j.store.Delete(ctx, key); err != nil {
		s.Problems++
		j.cfg.Log.WarnContext(ctx, "janitor: delete failed", "key", key, "err", err)
		return
	}
	s.Deleted++
	j.cfg.Log.DebugContext(ctx, "janitor: deleted an orphaned upload", "key", key)
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
	expiry := j.cfg.TusExpiry
	if expiry <= 0 {
		expiry = j.cfg.MinAge
	}
	return &tusRule{unfinished: now.Add(-expiry), completed: now.Add(-expiry - max(j.cfg.StagedAge, j.cfg.MinAge))}
}

// created is the latest a resumable upload can have begun on the S3
// server's clock: the time in its ULID, which the API's clock wrote, plus
// ClockAllowance; or fallback, an S3 time, for a key formq did not name.
func (r *tusRule) created(key string, fallback time.Time) time.Time {
	id, _, ok := submission.ParseTusKey(key)
	if !ok {
		return fallback
	}
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return fallback
	}
	return ulid.Time(u.Time()).Add(ClockAllowance)
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
