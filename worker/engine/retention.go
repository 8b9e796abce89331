package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/lifecycle"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
	"github.com/prometheus/client_golang/prometheus"
)

// Retention batches: a sweep erases at most RetentionBatch submissions of
// an action per round trip to the index, and at most RetentionRounds
// rounds per action, so one sweep's work is bounded however much expired.
const (
	RetentionBatch  = 100
	RetentionRounds = 10
)

// RetentionSweep erases submissions older than their action's retention.
// NewRetention builds it; Run sweeps every interval until its context ends
// or Close is called.
type RetentionSweep struct {
	mu       sync.Mutex // guards index and periods, which Set replaces
	index    *jobs.Index
	periods  map[string]time.Duration // by action; only actions with one
	spam     map[string]time.Duration // by action: how long spam is kept (spam: keep_for)
	erased   *prometheus.CounterVec
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	claim    func(context.Context) bool
	loop     lifecycle.Loop
}

// RetentionConfig is how often a retention sweep runs, who may run it,
// and where it reports.
type RetentionConfig struct {
	// Interval is the time between sweeps of Run.
	Interval time.Duration
	// Claim, when not nil, is asked before each sweep so one worker of a
	// fleet sweeps at a time.
	Claim func(context.Context) bool
	// Registerer gets formq_retention_erased_total when not nil.
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// NewRetention builds the retention sweep for the actions' periods
// (action name to how long its submissions are kept). It starts nothing.
func NewRetention(index *jobs.Index, periods map[string]time.Duration, cfg RetentionConfig) *RetentionSweep {
	reg, log := cfg.Registerer, cfg.Log
	r := &RetentionSweep{log: log, now: time.Now, interval: cfg.Interval, claim: cfg.Claim,
		erased: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formq_retention_erased_total",
			Help: "Submissions erased because they outlived their action's retention.",
		}, []string{"action"}),
	}
	r.Set(index, periods)
	if reg != nil {
		reg.MustRegister(r.erased)
	}
	return r
}

// Set replaces the index and the periods the sweeps read: those of a
// reloaded actions file. A sweep under way finishes with the ones it
// began with.
func (r *RetentionSweep) Set(index *jobs.Index, periods map[string]time.Duration) {
	kept := map[string]time.Duration{}
	for a, p := range periods {
		if p > 0 {
			kept[a] = p
			r.erased.WithLabelValues(a)
		}
	}
	r.mu.Lock()
	r.index, r.periods = index, kept
	r.mu.Unlock()
}

// SetSpam replaces how long each action's spam stays in the Spam folder
// (the actions' spam: keep_for); spam of an action not named is kept for
// actions.DefaultSpamKeepFor.
func (r *RetentionSweep) SetSpam(keep map[string]time.Duration) {
	r.mu.Lock()
	r.spam = keep
	r.mu.Unlock()
}

// Active reports whether any action has a retention or spam: setting.
func (r *RetentionSweep) Active() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.periods) > 0 || len(r.spam) > 0
}

// Sweep erases expired submissions, oldest first, in bounded batches. A
// submission still being processed is left for the next sweep.
func (r *RetentionSweep) Sweep(ctx context.Context) (int, error) {
	r.mu.Lock()
	index, periods, spam := r.index, r.periods, r.spam
	r.mu.Unlock()
	total, err := r.sweepSpam(ctx, index, spam)
	errs := []error{err}
	for action, keep := range periods {
		cutoff := r.now().Add(-keep)
		skipped := map[string]bool{}
		for range RetentionRounds {
			entries, err := index.Expired(ctx, action, cutoff, RetentionBatch+len(skipped))
			if err != nil {
				errs = append(errs, err)
				break
			}
			progress := 0
			for _, entry := range entries {
				_, _, id, _ := submission.ParseIndexEntry(entry)
				if skipped[id] {
					continue
				}
				err := index.Erase(ctx, id)
				switch {
				case errors.Is(err, submission.ErrNotFound):
					// An entry left by an interrupted erasure.
					if err := index.Drop(ctx, action, entry); err != nil {
						errs = append(errs, err)
						skipped[id] = true
					}
					progress++
				case err == nil:
					r.erased.WithLabelValues(action).Inc()
					total++
					progress++
				case errors.Is(err, submission.ErrBusy):
					skipped[id] = true
				default:
					skipped[id] = true
					errs = append(errs, err)
				}
			}
			if progress == 0 {
				break
			}
		}
	}
	if total > 0 && r.log != nil {
		r.log.InfoContext(ctx, "retention erased expired submissions", "erased", total)
	}
	return total, errors.Join(errs...)
}

// Run sweeps every interval until ctx ends or Close is called.
func (r *RetentionSweep) Run(ctx context.Context) error { return r.loop.Run(ctx, r.sweepEvery) }

// Close stops a Run under way and waits for it.
func (r *RetentionSweep) Close() error { return r.loop.Close() }

func (r *RetentionSweep) sweepEvery(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if r.claim == nil || r.claim(ctx) {
			if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil && r.log != nil {
				r.log.WarnContext(ctx, "retention sweep failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepSpam erases the Spam folder's submissions older than their
// action's keep_for, oldest first, in bounded batches like Sweep.
func (r *RetentionSweep) sweepSpam(ctx context.Context, index *jobs.Index, keep map[string]time.Duration) (int, error) {
	if len(keep) == 0 {
		return 0, nil
	}
	now := r.now()
	shortest := actions.DefaultSpamKeepFor
	for _, k := range keep {
		shortest = min(shortest, k)
	}
	total := 0
	skipped := map[string]bool{}
	for range RetentionRounds {
		entries, err := index.SpamExpired(ctx, now.Add(-shortest), RetentionBatch+len(skipped))
		if err != nil {
			return total, err
		}
		progress := 0
		for _, entry := range entries {
			at, action, id, _ := submission.ParseIndexEntry(entry)
			period, ok := keep[action]
			if !ok {
				period = actions.DefaultSpamKeepFor
			}
			if skipped[id] || !at.Before(now.Add(-period)) {
				skipped[id] = true
				continue
			}
			switch err := index.Erase(ctx, id); {
			case err == nil, errors.Is(err, submission.ErrNotFound):
				if err != nil {
					if err := index.DropSpam(ctx, entry); err != nil {
						return total, err
					}
				} else {
					r.erased.WithLabelValues(action).Inc()
					total++
				}
				progress++
			default:
				skipped[id] = true
			}
		}
		if progress == 0 {
			break
		}
	}
	return total, nil
}
