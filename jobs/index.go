package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Index limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
	// scanBudget bounds the index entries one page may look at when a
	// status or mark filter skips most of them; the page then ends early
	// with a cursor to go on from.
	scanBudget = 5000
	// searchBudget is the same bound for a search, whose test per entry
	// is a substring match over its card: a page that finds nothing takes
	// about 175 ms, and 100,000 submissions about 1 s over 5 pages
	// (BenchmarkInboxList100k; a page of hits among recent ones, ms).
	searchBudget = 20000
)

// IndexStore is what the index needs of S3: records, and the objects
// under a submission's prefixes.
type IndexStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, keys ...string) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// Index is the submissions index in Redis (see submission/index.go):
// entries sorted by received time, written when a record is stored, and
// what reads and erases submissions through it.
type Index struct {
	rdb   redis.UniversalClient
	store IndexStore
	tasks *asynq.Inspector
	salt  *Salt
	// personal lists the personal fields of each action.
	personal map[string][]string
	// hidden lists the fields of each action kept out of its card.
	hidden map[string][]string
}

// WithHidden keeps the named fields (action name to field names: the
// password fields) out of the cards the inbox previews and searches.
func (x *Index) WithHidden(fields map[string][]string) *Index {
	x.hidden = fields
	return x
}

// card is the JSON of a submission's card.
func (x *Index) card(sub *submission.Submission) string {
	hidden := x.hidden[sub.Action]
	card := submission.Card(sub.Values, func(f string) bool { return slices.Contains(hidden, f) })
	b, _ := json.Marshal(card)
	return string(b)
}

// WithPersonal makes the index find submissions by the values of the
// fields declared personal (action name to field names).
func (x *Index) WithPersonal(fields map[string][]string) *Index {
	x.personal = fields
	return x
}

// personalKeys are the sets a record's personal values are in.
func (x *Index) personalKeys(sub *submission.Submission) []string {
	var keys []string
	for _, f := range x.personal[sub.Action] {
		var vals []string
		switch v := sub.Values[f].(type) {
		case string:
			vals = []string{v}
		case []string:
			vals = v
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					vals = append(vals, s)
				}
			}
		}
		for _, v := range vals {
			if strings.TrimSpace(v) != "" {
				keys = append(keys, submission.PersonalKey(sub.Action, f, v))
			}
		}
	}
	return keys
}

// ByPersonal answers the ids of an action's submissions whose personal
// field holds value.
func (x *Index) ByPersonal(ctx context.Context, action, field, value string) ([]string, error) {
	ids, err := x.rdb.SMembers(ctx, submission.PersonalKey(action, field, value)).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: read the personal index: %w", err)
	}
	return ids, nil
}

// NewIndex builds the index on Redis and the record store.
func NewIndex(rdb redis.UniversalClient, store IndexStore) *Index {
	return &Index{rdb: rdb, store: store, tasks: asynq.NewInspectorFromRedisClient(rdb), salt: NewSalt(rdb)}
}

// Add puts a stored submission in the index; adding it again changes
// nothing.
func (x *Index) Add(ctx context.Context, sub *submission.Submission) error {
	keys, entry := x.addKeys(sub)
	_, err := x.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, keys[0], redis.Z{Member: entry})
		p.ZAdd(ctx, keys[1], redis.Z{Member: entry})
		p.HSet(ctx, keys[2], sub.ID, entry)
		p.HSet(ctx, keys[3], sub.ID, x.card(sub))
		for _, k := range keys[4:] {
			p.SAdd(ctx, k, sub.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("jobs: index %s: %w", sub.ID, err)
	}
	return nil
}

// addKeys are the keys Add writes — the index of all submissions and the
// action's (the entry added to each), the id lookup (id to entry), the
// cards (id to card), then the personal sets (the id added to each) — and
// the entry; completePlain writes the same.
func (x *Index) addKeys(sub *submission.Submission) (keys []string, entry string) {
	keys = append([]string{submission.IndexAll, submission.IndexActionKey(sub.Action), submission.IndexIDs, submission.IndexCards}, x.personalKeys(sub)...)
	return keys, submission.IndexEntry(sub.ReceivedAt, sub.Action, sub.ID)
}

// List answers one page of the index, newest first. A status, mark or
// search filter looks at up to scanBudget (searchBudget) entries; a page
// that reaches it ends early, with the cursor to go on from.
func (x *Index) List(ctx context.Context, q submission.Query) (submission.Page, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	q.Limit = min(q.Limit, MaxPageSize)
	key := submission.IndexAll
	switch {
	case q.Folder == submission.FolderSpam:
		key = submission.SpamFolder
	case q.Action != "":
		key = submission.IndexActionKey(q.Action)
	}
	hi := "+"
	if !q.Until.IsZero() {
		hi = "(" + submission.IndexBound(q.Until)
	}
	if q.Cursor != "" {
		if _, _, _, ok := submission.ParseIndexEntry(q.Cursor); !ok {
			return submission.Page{}, submission.ErrBadCursor
		}
		if hi == "+" || q.Cursor < hi[1:] {
			hi = "(" + q.Cursor
		}
	}
	lo := "-"
	if !q.Since.IsZero() {
		lo = "[" + submission.IndexBound(q.Since)
	}
	words := strings.Fields(strings.ToLower(q.Search))
	filtered := q.Status != "" || q.Flag != "" || len(words) > 0 || (q.Folder == submission.FolderSpam && q.Action != "")
	budget := scanBudget
	if len(words) > 0 {
		budget = searchBudget
	}
	page := submission.Page{Items: []submission.Listed{}}
	for len(page.Items) < q.Limit {
		batch := q.Limit - len(page.Items)
		if filtered {
			batch = 500
		}
		entries, err := x.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: lo, Stop: hi, ByLex: true, Rev: true, Count: int64(batch)}).Result()
		if err != nil {
			return submission.Page{}, fmt.Errorf("jobs: read the index: %w", err)
		}
		if len(entries) == 0 {
			return page, nil
		}
		items, err := x.listed(ctx, entries)
		if err != nil {
			return submission.Page{}, err
		}
		for i, it := range items {
			page.Scanned++
			if keep(q, words, it) {
				page.Items = append(page.Items, it)
			}
			hi = "(" + entries[i]
			if len(page.Items) == q.Limit {
				break
			}
		}
		if len(entries) < batch && len(page.Items) < q.Limit {
			return page, nil
		}
		if page.Scanned >= budget {
			break
		}
	}
	page.Next = hi[1:]
	return page, nil
}

// keep says whether a listed submission passes the query's filters.
func keep(q submission.Query, words []string, it submission.Listed) bool {
	if (q.Status != "" && it.Status != q.Status) || (q.Action != "" && it.Action != q.Action) {
		return false
	}
	switch q.Flag {
	case "read":
		if !it.Read {
			return false
		}
	case "unread":
		if it.Read {
			return false
		}
	case "starred":
		if !it.Starred {
			return false
		}
	}
	if len(words) == 0 {
		return true
	}
	var text strings.Builder
	text.WriteString(strings.ToLower(it.ID))
	for _, v := range it.Values {
		text.WriteByte(' ')
		text.WriteString(strings.ToLower(v))
	}
	all := text.String()
	for _, w := range words {
		if !strings.Contains(all, w) {
			return false
		}
	}
	return true
}

// listed reads the status, card and marks of index entries in one round
// trip; a card missing (a record stored before cards existed) is made
// from the record and kept.
func (x *Index) listed(ctx context.Context, entries []string) ([]submission.Listed, error) {
	cmds := make([]*redis.StringCmd, len(entries))
	out := make([]submission.Listed, len(entries))
	ids := make([]any, len(entries))
	idStrings := make([]string, len(entries))
	for i, e := range entries {
		at, action, id, _ := submission.ParseIndexEntry(e)
		out[i] = submission.Listed{ID: id, Action: action, ReceivedAt: at}
		ids[i], idStrings[i] = id, id
	}
	var cards, verdicts *redis.SliceCmd
	var read, starred *redis.BoolSliceCmd
	_, err := x.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, it := range out {
			cmds[i] = p.HGet(ctx, submission.StatusKey(it.ID), "status")
		}
		cards = p.HMGet(ctx, submission.IndexCards, idStrings...)
		verdicts = p.HMGet(ctx, submission.SpamVerdicts, idStrings...)
		read = p.SMIsMember(ctx, submission.InboxRead, ids...)
		starred = p.SMIsMember(ctx, submission.InboxStarred, ids...)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("jobs: read statuses: %w", err)
	}
	flags := func(c *redis.BoolSliceCmd, i int) bool { v := c.Val(); return i < len(v) && v[i] }
	for i, c := range cmds {
		out[i].Status = c.Val()
		if out[i].Status == "" {
			// The status outlived its StatusTTL; the record remains.
			out[i].Status = StatusArchived
		}
		out[i].Read, out[i].Starred = flags(read, i), flags(starred, i)
		if raw, ok := verdicts.Val()[i].(string); ok {
			_ = json.Unmarshal([]byte(raw), &out[i].Spam)
		}
		if raw, ok := cards.Val()[i].(string); ok {
			_ = json.Unmarshal([]byte(raw), &out[i].Values)
			continue
		}
		if err := x.fillCard(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fillCard makes the card of a submission indexed without one from its
// record, and keeps it.
func (x *Index) fillCard(ctx context.Context, it *submission.Listed) error {
	if x.store == nil {
		return nil
	}
	sub, err := x.record(ctx, it.Action, it.ID)
	if errors.Is(err, submission.ErrNotFound) {
		return nil // erased meanwhile, or not stored yet
	}
	if err != nil {
		return err
	}
	card := x.card(sub)
	_ = json.Unmarshal([]byte(card), &it.Values)
	return x.rdb.HSetNX(ctx, submission.IndexCards, it.ID, card).Err()
}

// Count answers how many submissions the index holds, of one action or
// (action "") of all.
func (x *Index) Count(ctx context.Context, action string) (int64, error) {
	key := submission.IndexAll
	if action != "" {
		key = submission.IndexActionKey(action)
	}
	n, err := x.rdb.ZCard(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("jobs: count the index: %w", err)
	}
	return n, nil
}

// Inbox marks: read and starred.
const (
	MarkRead    = "read"
	MarkStarred = "starred"
)

// Starred says whether a submission is starred.
func (x *Index) Starred(ctx context.Context, id string) (bool, error) {
	on, err := x.rdb.SIsMember(ctx, submission.InboxStarred, id).Result()
	if err != nil {
		return false, fmt.Errorf("jobs: read the marks: %w", err)
	}
	return on, nil
}

// Mark sets (on) or clears a mark (MarkRead, MarkStarred) on indexed
// submissions; ids not in the index are left out. It answers how many it
// marked.
func (x *Index) Mark(ctx context.Context, mark string, on bool, ids ...string) (int, error) {
	key := submission.InboxRead
	if mark == MarkStarred {
		key = submission.InboxStarred
	}
	if len(ids) == 0 {
		return 0, nil
	}
	known, err := x.rdb.HMGet(ctx, submission.IndexIDs, ids...).Result()
	if err != nil {
		return 0, fmt.Errorf("jobs: read the index: %w", err)
	}
	var members []any
	for i, e := range known {
		if e != nil {
			members = append(members, ids[i])
		}
	}
	if len(members) == 0 {
		return 0, nil
	}
	if on {
		err = x.rdb.SAdd(ctx, key, members...).Err()
	} else {
		err = x.rdb.SRem(ctx, key, members...).Err()
	}
	if err != nil {
		return 0, fmt.Errorf("jobs: mark %s: %w", mark, err)
	}
	return len(members), nil
}

// StatusArchived is the listed status of a submission whose status
// expired (StatusTTL after its last change); its record remains.
const StatusArchived = "archived"

// Lookup answers the action of an indexed submission.
func (x *Index) Lookup(ctx context.Context, id string) (entry string, err error) {
	entry, err = x.rdb.HGet(ctx, submission.IndexIDs, id).Result()
	if errors.Is(err, redis.Nil) {
		return "", submission.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("jobs: read the index: %w", err)
	}
	return entry, nil
}

// Record reads the stored record of an indexed submission.
func (x *Index) Record(ctx context.Context, id string) (*submission.Submission, error) {
	entry, err := x.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	_, action, _, _ := submission.ParseIndexEntry(entry)
	return x.record(ctx, action, id)
}

func (x *Index) record(ctx context.Context, action, id string) (*submission.Submission, error) {
	b, err := x.store.Get(ctx, submission.RecordKey(action, id))
	if errors.Is(err, uploads.ErrNotFound) {
		return nil, submission.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var sub submission.Submission
	if err := json.Unmarshal(b, &sub); err != nil {
		return nil, fmt.Errorf("jobs: decode the record of %s: %w", id, err)
	}
	return &sub, nil
}

// Each calls fn with every record of an action, newest first, reading
// the index a batch at a time so that any number is read in constant
// memory. An error of fn stops it.
func (x *Index) Each(ctx context.Context, action string, fn func(*submission.Submission) error) error {
	hi := "+"
	for {
		entries, err := x.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: submission.IndexActionKey(action), Start: "-", Stop: hi, ByLex: true, Rev: true, Count: 100}).Result()
		if err != nil {
			return fmt.Errorf("jobs: read the index: %w", err)
		}
		for _, e := range entries {
			_, _, id, _ := submission.ParseIndexEntry(e)
			sub, err := x.record(ctx, action, id)
			if errors.Is(err, submission.ErrNotFound) {
				continue // erased meanwhile
			}
			if err != nil {
				return err
			}
			if err := fn(sub); err != nil {
				return err
			}
		}
		if len(entries) < 100 {
			return nil
		}
		hi = "(" + entries[len(entries)-1]
	}
}

// Erase removes every trace of a submission: its record, its files and
// their variants, the staged copies kept of them when an app refused it,
// its status, its revalidation event (the stream entry and its dedupe
// key), its idempotency entry, its finished task and its redeliveries'
// tasks, its place in the autoresponder's counts and its index entries;
// then it checks that none is left. A submission still queued or
// processing is submission.ErrBusy.
func (x *Index) Erase(ctx context.Context, id string) error {
	entry, err := x.Lookup(ctx, id)
	if err != nil {
		return err
	}
	_, action, _, _ := submission.ParseIndexEntry(entry)
	st, err := x.rdb.HGetAll(ctx, submission.StatusKey(id)).Result()
	if err != nil {
		return fmt.Errorf("jobs: read status of %s: %w", id, err)
	}
	if s := st["status"]; s == submission.StatusQueued || s == submission.StatusProcessing {
		return submission.ErrBusy
	}
	if err := x.deleteTasks(ctx, id); err != nil {
		return err
	}
	var personal, mailed []string
	switch sub, err := x.record(ctx, action, id); {
	case err == nil:
		personal = x.personalKeys(sub)
		if err := x.forget(ctx, sub); err != nil {
			return err
		}
		if mailed, err = x.recipientKeys(ctx, sub); err != nil {
			return err
		}
	case !errors.Is(err, submission.ErrNotFound):
		return err
	}
	prefix := submission.UploadsPrefix + action + "/" + id + "/"
	keys, err := x.store.List(ctx, prefix)
	if err != nil {
		return err
	}
	keys = append(keys, submission.RecordKey(action, id))
	var staged []submission.StagedFile
	if raw := st["kept"]; raw != "" && raw != "null" {
		if err := json.Unmarshal([]byte(raw), &staged); err != nil {
			return fmt.Errorf("jobs: read the kept files of %s: %w", id, err)
		}
	}
	for _, f := range staged {
		if _, ok := submission.ParseStagedKey(f.Staged); ok {
			keys = append(keys, f.Staged)
		}
	}
	if err := x.store.Delete(ctx, keys...); err != nil {
		return err
	}
	idemOf := submission.IdempotencyOfKey(id)
	redisKeys := []string{submission.StatusKey(id), submission.EventKey(id), idemOf}
	if idem, err := x.rdb.Get(ctx, idemOf).Result(); err == nil && strings.HasPrefix(idem, "formq:idem:") {
		redisKeys = append(redisKeys, idem)
	}
	var events []string
	for _, ev := range []string{st["event"], x.rdb.Get(ctx, submission.EventKey(id)).Val()} {
		if ev != "" && !slices.Contains(events, ev) {
			events = append(events, ev)
		}
	}
	_, err = x.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, redisKeys...)
		if len(events) > 0 {
			p.XDel(ctx, submission.EventsStream, events...)
		}
		for _, k := range mailed {
			p.ZRem(ctx, k, id)
		}
		p.ZRem(ctx, submission.IndexAll, entry)
		p.ZRem(ctx, submission.IndexActionKey(action), entry)
		p.HDel(ctx, submission.IndexIDs, id)
		p.HDel(ctx, submission.IndexCards, id)
		p.SRem(ctx, submission.InboxRead, id)
		p.SRem(ctx, submission.InboxStarred, id)
		p.ZRem(ctx, submission.SpamFolder, entry)
		p.HDel(ctx, submission.SpamVerdicts, id)
		p.HDel(ctx, submission.SpamLabels, id)
		for _, k := range personal {
			p.SRem(ctx, k, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("jobs: erase %s from Redis: %w", id, err)
	}
	// Answer only when all of it is gone.
	left, err := x.store.List(ctx, prefix)
	if err != nil {
		return err
	}
	if _, err := x.store.Get(ctx, submission.RecordKey(action, id)); !errors.Is(err, uploads.ErrNotFound) {
		left = append(left, submission.RecordKey(action, id))
	}
	still, err := x.rdb.Exists(ctx, redisKeys...).Result()
	if err != nil {
		return err
	}
	if len(left) > 0 || still > 0 {
		return fmt.Errorf("jobs: erasing %s left %d objects and %d Redis keys", id, len(left), still)
	}
	return nil
}

// deleteTasks deletes a submission's finished task, its release's and the
// tasks of its redeliveries ({id}-redeliver-{n}), whose payloads hold the
// record.
func (x *Index) deleteTasks(ctx context.Context, id string) error {
	for _, q := range submission.AllQueues {
		var ids []string
		for _, t := range []string{id, submission.ReleaseTaskID(id)} {
			if n, err := x.rdb.Exists(ctx, taskKey(q, t)).Result(); err == nil && n > 0 {
				ids = append(ids, t)
			}
		}
		prefix := taskKey(q, id+"-redeliver-")
		iter := x.rdb.Scan(ctx, 0, redisPattern(prefix)+"*", 200).Iterator()
		for iter.Next(ctx) {
			ids = append(ids, strings.TrimPrefix(iter.Val(), taskKey(q, "")))
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("jobs: find the redeliveries of %s: %w", id, err)
		}
		for _, t := range ids {
			if err := x.tasks.DeleteTask(q, t); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
				return fmt.Errorf("jobs: delete the task %s: %w", t, err)
			}
		}
	}
	return nil
}

// redisPattern escapes the glob characters of a key for SCAN MATCH.
func redisPattern(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// recipientKeys are the autoresponder limit keys a record's addresses
// may be counted under: every value that looks like an address (which
// field an autoresponder mailed is the actions file's business, and it
// may have changed since).
func (x *Index) recipientKeys(ctx context.Context, sub *submission.Submission) ([]string, error) {
	var keys []string
	add := func(v string) error {
		if !strings.Contains(v, "@") || len(v) > 320 {
			return nil
		}
		k, err := RecipientKey(ctx, x.salt, v)
		if err != nil {
			return err
		}
		d, err := RecipientDomainKey(ctx, x.salt, v)
		if err != nil {
			return err
		}
		keys = append(keys, k, d)
		return nil
	}
	for _, v := range sub.Values {
		var err error
		switch v := v.(type) {
		case string:
			err = add(v)
		case []string:
			for _, e := range v {
				if err = add(e); err != nil {
					break
				}
			}
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					if err = add(s); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// Expired answers up to limit index entries of an action received
// before t, oldest first, for retention.
func (x *Index) Expired(ctx context.Context, action string, before time.Time, limit int) ([]string, error) {
	entries, err := x.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: submission.IndexActionKey(action), Start: "-", Stop: "(" + submission.IndexBound(before), ByLex: true, Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: read the index: %w", err)
	}
	return entries, nil
}

// Drop removes an index entry whose submission is gone.
func (x *Index) Drop(ctx context.Context, action, entry string) error {
	_, err := x.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, submission.IndexAll, entry)
		p.ZRem(ctx, submission.IndexActionKey(action), entry)
		if _, _, id, ok := submission.ParseIndexEntry(entry); ok {
			p.HDel(ctx, submission.IndexCards, id)
			p.SRem(ctx, submission.InboxRead, id)
			p.SRem(ctx, submission.InboxStarred, id)
		}
		return nil
	})
	return err
}

// NoteIdempotency records the idempotency entry an accepted submission
// claimed, for as long as the entry lives, so erasure removes it too.
func (x *Index) NoteIdempotency(ctx context.Context, id, key string, ttl time.Duration) error {
	if err := x.rdb.Set(ctx, submission.IdempotencyOfKey(id), key, ttl).Err(); err != nil {
		return fmt.Errorf("jobs: note the idempotency key of %s: %w", id, err)
	}
	return nil
}

// Queued is the submission of the task id in queue, as it was queued;
// nil when the queue holds no such task (never queued, or finished more
// than Retention ago).
func (x *Index) Queued(ctx context.Context, queue, id string) (*submission.Submission, error) {
	info, err := x.tasks.GetTaskInfo(queue, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: look up task %s in queue %s: %w", id, queue, err)
	}
	if info.Type != TypeSubmission {
		return nil, nil
	}
	var sub submission.Submission
	if err := json.Unmarshal(info.Payload, &sub); err != nil {
		return nil, fmt.Errorf("jobs: decode submission %s: %w", id, err)
	}
	return &sub, nil
}
