package submission

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The submissions index, in Redis, written by the worker when it stores a
// record:
//
//	formq:index               sorted set (lexical): {ms}/{action}/{id} of every submission
//	formq:index:a:{action}    sorted set (lexical): {ms}/{action}/{id} of one action's
//	formq:index:ids           hash: id to its entry
//	formq:idem-of:{id}        the idempotency key an accepted submission claimed
//	formq:index:p:{action}:{field}:{digest}  set: ids whose personal field has a value
//	formq:index:cards         hash: id to its card (the JSON of its shown values, for previews and search)
//	formq:inbox:read          set: ids an admin has read
//	formq:inbox:starred       set: ids an admin has starred
//
// Every member has score 0, so members sort by their text: {ms} is the
// received time in Unix milliseconds, zero-padded, so text order is time
// order and a member is its own cursor.
const (
	IndexAll = "formq:index"
	IndexIDs = "formq:index:ids"
	// IndexCards holds each submission's card: its values an admin may
	// see, cut short, for the inbox's previews and search.
	IndexCards = "formq:index:cards"
	// InboxRead and InboxStarred are the sets of ids marked read and
	// starred in the inbox.
	InboxRead    = "formq:inbox:read"
	InboxStarred = "formq:inbox:starred"
	// RetentionLock is held by the worker sweeping expired submissions.
	RetentionLock = "formq:retention"

	indexActionPrefix = "formq:index:a:"
	idemOfPrefix      = "formq:idem-of:"
	personalPrefix    = "formq:index:p:"
)

// IndexActionKey is the index of one action's submissions.
func IndexActionKey(action string) string { return indexActionPrefix + action }

// IdempotencyOfKey holds the Redis key of the idempotency entry an
// accepted submission claimed, so erasing it removes that entry too.
func IdempotencyOfKey(id string) string { return idemOfPrefix + id }

// PersonalKey is the set of ids of an action's submissions whose
// personal field holds value; the value is kept only as a digest of its
// trimmed, lower-cased text.
func PersonalKey(action, field, value string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(value))))
	return personalPrefix + action + ":" + field + ":" + hex.EncodeToString(sum[:16])
}

// IndexEntry is a submission's member in the index.
func IndexEntry(receivedAt time.Time, action, id string) string {
	return IndexBound(receivedAt) + "/" + action + "/" + id
}

// IndexBound is the text that sorts with the entries received at t.
func IndexBound(t time.Time) string { return fmt.Sprintf("%013d", max(t.UnixMilli(), 0)) }

// ParseIndexEntry splits an index member.
func ParseIndexEntry(entry string) (receivedAt time.Time, action, id string, ok bool) {
	parts := strings.Split(entry, "/")
	if len(parts) != 3 || len(parts[0]) != 13 || parts[1] == "" || parts[2] == "" {
		return time.Time{}, "", "", false
	}
	ms, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return time.Time{}, "", "", false
	}
	return time.UnixMilli(ms).UTC(), parts[1], parts[2], true
}

// Query selects submissions from the index, newest first.
type Query struct {
	Action       string    // one action's; all when empty
	Status       string    // one status (queued, processing, completed, failed); any when empty
	Since, Until time.Time // received at or after Since and before Until; zero: open
	Cursor       string    // Next of the previous page
	Limit        int
	// Search keeps the submissions whose card holds every word of it
	// (case-insensitive); empty keeps all.
	Search string
	// Flag keeps the submissions marked so: "read", "unread" or
	// "starred"; empty keeps all.
	Flag string
	// Folder is FolderSpam for the Spam folder; empty for the inbox.
	Folder string
}

// FolderSpam names the Spam folder in a Query.
const FolderSpam = "spam"

// Listed is one submission of a page of the index.
type Listed struct {
	ID         string    `json:"id"`
	Action     string    `json:"action"`
	ReceivedAt time.Time `json:"receivedAt"`
	Status     string    `json:"status"`
	// Values are the submission's card: its shown values (no password
	// fields), each cut to CardValueMax bytes.
	Values  map[string]string `json:"values,omitempty"`
	Read    bool              `json:"read"`
	Starred bool              `json:"starred"`
	// Spam is the spam verdict of an action with spam:; nil otherwise.
	Spam *Spam `json:"spam,omitempty"`
}

// Page is one page of the index and the cursor of the next, "" at the end.
type Page struct {
	Items []Listed `json:"items"`
	Next  string   `json:"next,omitempty"`
	// Scanned is how many index entries a filtered page looked at; a
	// search that reached its budget ends its page early, with Next.
	Scanned int `json:"-"`
}

// CardValueMax is the most bytes of one value a card keeps.
const CardValueMax = 280

// Card is the shown values of a submission (the fields not hidden),
// each cut to CardValueMax bytes at a character boundary.
func Card(values map[string]any, hidden func(field string) bool) map[string]string {
	card := map[string]string{}
	for k, v := range values {
		if hidden != nil && hidden(k) {
			continue
		}
		s := CardText(v)
		if s == "" {
			continue
		}
		if len(s) > CardValueMax {
			s = strings.ToValidUTF8(s[:CardValueMax], "")
		}
		card[k] = s
	}
	return card
}

// CardText is a value as one line of text: a list is joined with "; ".
func CardText(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case []string:
		return strings.Join(t, "; ")
	case []any:
		parts := make([]string, len(t))
		for i, p := range t {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, "; ")
	}
	return fmt.Sprint(v)
}

// Errors of the index.
var (
	// ErrBusy means a submission is still queued or being processed, so
	// it cannot be erased yet: its worker would write it again.
	ErrBusy = errors.New("submission is still being processed")
	// ErrBadCursor is a cursor no page gave.
	ErrBadCursor = errors.New("bad cursor")
	// ErrNotHeld means a submission is not waiting in the Spam folder:
	// never held, or released or confirmed already.
	ErrNotHeld = errors.New("the submission is not held as spam")
	// ErrNotRedeliverable means a step posts no webhook, so it cannot be
	// delivered again.
	ErrNotRedeliverable = errors.New("the step posts no webhook")
)
