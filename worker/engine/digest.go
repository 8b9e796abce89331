package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/lifecycle"
	"github.com/formq/formq/jobs/step/email"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// Digest limits: a digest lists at most DigestMax submissions (it links
// to the inbox for the rest); a worker sending one holds its lock for
// DigestLockTTL, after which another may try; a sent mark lasts
// digestSentTTL, past the day it names.
const (
	DigestMax     = 200
	DigestLockTTL = 5 * time.Minute
	digestSentTTL = 72 * time.Hour
)

// DigestIndex lists the submissions a digest shows: *jobs.Index.
type DigestIndex interface {
	List(ctx context.Context, q submission.Query) (submission.Page, error)
}

// Digests sends the daily digest emails of the actions declaring one
// (digest:). Every worker runs it; a lock and a sent mark per action and
// day in Redis make the fleet send each digest once. NewDigests builds it;
// Run looks every interval until its context ends or Close is called.
type Digests struct {
	mu       sync.Mutex // guards index and actions, which Set replaces
	index    DigestIndex
	actions  []*actions.Action // those with a digest
	rdb      redis.UniversalClient
	mailer   email.Mailer
	inboxURL string
	owner    string
	now      func() time.Time
	interval time.Duration
	log      *slog.Logger
	loop     lifecycle.Loop
}

// DigestConfig is what the digests need besides the actions: Redis for
// the locks, the mailer, the inbox's address for links, how often to look
// and the clock.
type DigestConfig struct {
	Redis  redis.UniversalClient
	Mailer email.Mailer
	// InboxURL is the inbox pages' address (FORMQ_PUBLIC_URL +
	// /admin/inbox); empty, digests carry no links.
	InboxURL string
	// Interval is the time between looks; a digest goes out within one
	// interval of its time.
	Interval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
}

// NewDigests builds the digests of the declared actions. It starts nothing.
func NewDigests(index DigestIndex, declared []*actions.Action, cfg DigestConfig) *Digests {
	host, _ := os.Hostname()
	d := &Digests{rdb: cfg.Redis, mailer: cfg.Mailer, inboxURL: strings.TrimRight(cfg.InboxURL, "/"), now: cfg.Now,
		interval: cfg.Interval, log: cfg.Log, owner: fmt.Sprintf("%s/%d", host, os.Getpid())}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.Set(index, declared)
	return d
}

// Set replaces the index and the actions: those of a reloaded actions file.
func (d *Digests) Set(index DigestIndex, declared []*actions.Action) {
	var with []*actions.Action
	for _, a := range declared {
		if a.Digest != nil {
			with = append(with, a)
		}
	}
	d.mu.Lock()
	d.index, d.actions = index, with
	d.mu.Unlock()
}

// Send sends the digests due now that no worker sent yet; it answers how
// many it sent. A digest with no submissions is marked sent without an
// email.
func (d *Digests) Send(ctx context.Context) (int, error) {
	d.mu.Lock()
	index, declared := d.index, d.actions
	d.mu.Unlock()
	sent := 0
	var errs []error
	for _, a := range declared {
		ok, err := d.sendOne(ctx, index, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("digest of %s: %w", a.Name, err))
		}
		if ok {
			sent++
		}
	}
	return sent, errors.Join(errs...)
}

// sendOne sends an action's digest due now, unless it was sent, skipped
// or is being sent by another worker.
func (d *Digests) sendOne(ctx context.Context, index DigestIndex, a *actions.Action) (bool, error) {
	from, until, day := a.Digest.Period(d.now())
	sentKey, lockKey := submission.DigestSentKey(a.Name, day), submission.DigestLockKey(a.Name, day)
	if n, err := d.rdb.Exists(ctx, sentKey).Result(); err != nil || n > 0 {
		return false, err
	}
	locked, err := d.rdb.SetNX(ctx, lockKey, d.owner, DigestLockTTL).Result()
	if err != nil || !locked {
		return false, err
	}
	defer d.rdb.Del(context.WithoutCancel(ctx), lockKey)
	// Another worker may have sent it and let go of the lock since.
	if n, err := d.rdb.Exists(ctx, sentKey).Result(); err != nil || n > 0 {
		return false, err
	}
	items, more, err := d.collect(ctx, index, a.Name, from, until)
	if err != nil {
		return false, err
	}
	if len(items) > 0 {
		if err := d.mailer.Send(ctx, d.message(a, items, more, from, until, day)); err != nil {
			return false, err
		}
		d.log.InfoContext(ctx, "digest sent", "action", a.Name, "day", day, "submissions", len(items))
	}
	if err := d.rdb.Set(ctx, sentKey, d.owner, digestSentTTL).Err(); err != nil {
		return len(items) > 0, err
	}
	return len(items) > 0, nil
}

// collect lists the action's submissions received in [from, until),
// newest first, at most DigestMax; more says whether there were others.
func (d *Digests) collect(ctx context.Context, index DigestIndex, action string, from, until time.Time) ([]submission.Listed, bool, error) {
	var items []submission.Listed
	q := submission.Query{Action: action, Since: from, Until: until, Limit: 100}
	for {
		page, err := index.List(ctx, q)
		if err != nil {
			return nil, false, err
		}
		for _, it := range page.Items {
			if len(items) == DigestMax {
				return items, true, nil
			}
			items = append(items, it)
		}
		if page.Next == "" {
			return items, false, nil
		}
		q.Cursor = page.Next
	}
}

// message is the digest email: a card per submission (who, what, when,
// status, link) and a link to them all in the inbox.
func (d *Digests) message(a *actions.Action, items []submission.Listed, more bool, from, until time.Time, day string) *email.Email {
	loc := a.Digest.Location
	count := fmt.Sprintf("%d submissions", len(items))
	if more {
		count = fmt.Sprintf("More than %d submissions", len(items))
	} else if len(items) == 1 {
		count = "1 submission"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s to %s from %s to %s (%s).\n", count, a.Name, from.In(loc).Format("Mon Jan 2 15:04"), until.In(loc).Format("Mon Jan 2 15:04"), loc)
	for _, it := range items {
		p := actions.PreviewOf(a, it.Values)
		who := p.Who
		if who == "" {
			who = it.ID
		}
		fmt.Fprintf(&b, "\n* %s\n", who)
		if p.What != "" {
			fmt.Fprintf(&b, "  %s\n", p.What)
		}
		fmt.Fprintf(&b, "  %s, %s", it.ReceivedAt.In(loc).Format("Mon Jan 2 15:04"), it.Status)
		if d.inboxURL != "" {
			fmt.Fprintf(&b, ": %s/%s", d.inboxURL, it.ID)
		}
		b.WriteString("\n")
	}
	if d.inboxURL != "" {
		q := url.Values{"action": {a.Name}, "since": {from.UTC().Format(time.RFC3339)}, "until": {until.UTC().Format(time.RFC3339)}}
		fmt.Fprintf(&b, "\nAll of them in the inbox: %s?%s\n", d.inboxURL, q.Encode())
	}
	return &email.Email{
		To:        a.Digest.To,
		Subject:   fmt.Sprintf("%s: %s, digest of %s", a.Name, strings.ToLower(count[:1])+count[1:], day),
		Body:      b.String(),
		MessageID: "digest." + a.Name + "." + day + "@formq",
		Date:      d.now(),
	}
}

// Run sends the digests due every interval until ctx ends or Close is
// called.
func (d *Digests) Run(ctx context.Context) error { return d.loop.Run(ctx, d.sendEvery) }

// Close stops a Run under way and waits for it.
func (d *Digests) Close() error { return d.loop.Close() }

func (d *Digests) sendEvery(ctx context.Context) {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		if _, err := d.Send(ctx); err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "digest not sent; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
