package submission

import (
	"strconv"
	"strings"
)

// The storage layout. Every S3 key and Redis key formq writes is made by
// one function here, and every key formq reads back is parsed by its pair,
// so the layout is written down once.
//
// S3:
//
//	submissions/{action}/{id}.json           the record (Submission as JSON)
//	uploads/{action}/{id}/{field}/{n}        the n-th file of a field
//	uploads/{action}/{id}/{field}/{n}.{var}  a variant of it (thumbnails)
//	uploads/_staged/{id}                     a file uploaded before its submission
//	uploads/_partial/{action}/{id}/{field}/{n}  a file's streamed PUT, before its copy into place
//	uploads/_tus/{id}                        a resumable (tus) upload, once complete
//	uploads/_tus/{id}.info, {id}.part        tusd's state of it: metadata, an unfinished part
//
// Redis (besides asynq's own asynq:* keys):
//
//	formq:submission:{id}      hash: the submission's status
//	formq:status               channel: the id of every submission whose status changed
//	formq:events               stream: revalidation events
//	formq:revalidate           channel: the same events, live
//	formq:event:{id}           the stream id of a submission's event (publish once)
//	formq:idem:{action}:{key}  an idempotency key's claim or answer
//	formq:refclaim:{id}        the submission that used a staged upload's reference
//	formq:rl:{action}:{client} a rate limit's state
//	formq:janitor              the lock of the janitor's sweep
//	formq:captcha:{digest}     a captcha answer already accepted (replay cache)
//	formq:replicated           the last write an API waited on replicas for
//	formq:ar:{digest}          the submissions an autoresponder mailed to one address
//	formq:ard:{digest}         the submissions autoresponders mailed to one domain
//	formq:tuslock:{id}         the lock of a resumable upload (one API process writes it at a time)
//	formq:tusup:{digest}       zset: one client's unfinished resumable uploads, by expiry
//	formq:tusowner:{object}    the client digest of an unfinished resumable upload
//	formq:stamp:{digest}       a min_fill_time render stamp already used
//	formq:streams              zset: the API processes counting open event streams, by last renewal
//	formq:streams:{process}    hash: the event streams one API process holds open, by client digest
//	formq:salt                 the key of the digests in key names (ar, rl, streams, tusup)
//	formq:audit                stream: the admin side's audit log (internal/audit)
//	formq:audit:signin:{digest} a person signed in lately (one sign-in entry per 12 hours)
//	formq:index...             the submissions index (see index.go)
const (
	RecordsPrefix = "submissions/"
	UploadsPrefix = "uploads/"
	// StagedPrefix holds files uploaded before their submission. No
	// action can be named _staged, so the prefix never meets a
	// submission's files.
	StagedPrefix = UploadsPrefix + "_staged/"
	// TusPrefix holds resumable uploads, written by tusd's S3 store: the
	// file under its id, tusd's .info and .part objects beside it. Like
	// _staged, no action can be named _tus.
	TusPrefix = UploadsPrefix + "_tus/"
	// PartialPrefix holds the streamed PUT of a file until it was read
	// whole and copied to its own key: an object here is never a stored
	// file, only one on its way or the remains of a cut upload.
	PartialPrefix = UploadsPrefix + "_partial/"

	StatusChannel = "formq:status"
	EventsStream  = "formq:events"
	EventsChannel = "formq:revalidate"
	JanitorLock   = "formq:janitor"
	// ReplicatedMark is the key the API writes just before it waits for
	// replicas (FORMQ_REDIS_MIN_REPLICAS); its value is the submission.
	ReplicatedMark = "formq:replicated"
	// SaltKey holds the random key of the keyed digests of personal
	// values in Redis key names (autoresponder recipients, rate limited
	// clients); see jobs.Salt.
	SaltKey = "formq:salt"
	// StreamProcessesKey lists the API processes whose counts of open
	// event streams are live (see StreamCountsKey), scored by when each
	// last renewed them.
	StreamProcessesKey = "formq:streams"

	statusKeyPrefix  = "formq:submission:"
	eventKeyPrefix   = "formq:event:"
	idemKeyPrefix    = "formq:idem:"
	refClaimPrefix   = "formq:refclaim:"
	rateKeyPrefix    = "formq:rl:"
	autoDomainPrefix = "formq:ard:"
	captchaPrefix    = "formq:captcha:"
	autoPrefix       = "formq:ar:"
)

// RecordKey is the S3 key of a submission's record.
func RecordKey(action, id string) string { return RecordsPrefix + action + "/" + id + ".json" }

// ParseRecordKey splits a record key into its action and submission id.
func ParseRecordKey(key string) (action, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, RecordsPrefix)
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, ".json")
	if !ok {
		return "", "", false
	}
	action, id, ok = strings.Cut(rest, "/")
	if !ok || action == "" || id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	return action, id, true
}

// UploadKey is the S3 key of the n-th file (from 0) of a field.
func UploadKey(action, id, field string, n int) string {
	return UploadsPrefix + action + "/" + id + "/" + field + "/" + strconv.Itoa(n)
}

// VariantKey is the key of a variant of a stored file (a thumbnail),
// kept beside it so it shares the file's fate.
func VariantKey(original, variant string) string { return original + "." + variant }

// UploadPlace is where a key under UploadsPrefix belongs.
type UploadPlace struct {
	Action, ID, Field string
	N                 int
	Variant           string // empty for the file itself
}

// ParseUploadKey splits the key of a submission's file, or of a variant
// of one. Staged keys are not a submission's: see ParseStagedKey.
func ParseUploadKey(key string) (UploadPlace, bool) {
	rest, ok := strings.CutPrefix(key, UploadsPrefix)
	if !ok || strings.HasPrefix(key, StagedPrefix) {
		return UploadPlace{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return UploadPlace{}, false
	}
	num, variant, _ := strings.Cut(parts[3], ".")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strconv.Itoa(n) != num {
		return UploadPlace{}, false
	}
	return UploadPlace{Action: parts[0], ID: parts[1], Field: parts[2], N: n, Variant: variant}, true
}

// PartialKey is where the file of key is streamed before it is copied to
// key (see PartialPrefix).
func PartialKey(key string) string {
	return PartialPrefix + strings.TrimPrefix(key, UploadsPrefix)
}

// StagedKey is the S3 key of a file uploaded before its submission.
func StagedKey(id string) string { return StagedPrefix + id }

// ParseStagedKey answers the id of a staged file's key.
func ParseStagedKey(key string) (id string, ok bool) {
	id, ok = strings.CutPrefix(key, StagedPrefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// Suffixes of tusd's own objects beside a resumable upload.
const (
	TusInfoSuffix = ".info"
	TusPartSuffix = ".part"
)

// TusKey is the S3 key of a resumable upload's file; id is the object id
// formq gives the upload (a ULID), before tusd's "+multipart-id".
func TusKey(id string) string { return TusPrefix + id }

// ParseTusKey splits a key under TusPrefix into the upload's id and the
// suffix of tusd's object ("" for the file itself, TusInfoSuffix or
// TusPartSuffix).
func ParseTusKey(key string) (id, suffix string, ok bool) {
	rest, ok := strings.CutPrefix(key, TusPrefix)
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return "", "", false
	}
	for _, sfx := range []string{TusInfoSuffix, TusPartSuffix} {
		if id, found := strings.CutSuffix(rest, sfx); found && id != "" {
			return id, sfx, true
		}
	}
	if strings.Contains(rest, ".") {
		return "", "", false
	}
	return rest, "", true
}

// StatusKey is the Redis hash of a submission's status.
func StatusKey(id string) string { return statusKeyPrefix + id }

// EventKey holds the stream id of a submission's revalidation event, so
// it is published once.
func EventKey(id string) string { return eventKeyPrefix + id }

// IdempotencyKey is the Redis key of a client's idempotency key for an
// action; hash is a digest of the client's key and subject.
func IdempotencyKey(action, hash string) string { return idemKeyPrefix + action + ":" + hash }

// RateLimitKey is the Redis key of an action's rate limit for a client;
// client is a keyed digest of the client's address, never the address.
func RateLimitKey(action, client string) string { return rateKeyPrefix + action + ":" + client }

// RefClaimKey is the Redis key claiming the staged upload id for the one
// submission that may use its reference.
func RefClaimKey(id string) string { return refClaimPrefix + id }

// CaptchaKey marks a captcha answer as used; digest is a hash of the
// provider and the answer, never the answer itself.
func CaptchaKey(digest string) string { return captchaPrefix + digest }

// CaptchaGrantKey counts the uses of one upload grant (a solved captcha
// standing in for its answer on the pre-upload routes); id is the grant's
// random id.
func CaptchaGrantKey(id string) string { return "formq:captcha-grant:" + id }

// AutoresponderKey counts an autoresponder's messages to one address;
// digest is a keyed digest of the address as NormalizeAddress spells it.
func AutoresponderKey(digest string) string { return autoPrefix + digest }

// AutoresponderDomainKey counts the autoresponders' messages to one
// recipient domain; digest is a keyed digest of the domain.
func AutoresponderDomainKey(digest string) string { return autoDomainPrefix + digest }

// TusLockKey is the lock of a resumable upload, so one API process at a
// time writes it.
func TusLockKey(id string) string { return "formq:tuslock:" + id }

// StreamCountsKey holds how many event streams each client holds open
// on one API process, by keyed digest of the client's address.
func StreamCountsKey(process string) string { return StreamProcessesKey + ":" + process }

// TusUploadsKey holds one client's unfinished resumable uploads (object
// ids scored by expiry); digest is a keyed digest of its address.
func TusUploadsKey(digest string) string { return "formq:tusup:" + digest }

// TusOwnerKey names the client (the digest of TusUploadsKey) counting an
// unfinished resumable upload, by the upload's object id.
func TusOwnerKey(object string) string { return "formq:tusowner:" + object }

// StampKey marks a render stamp (min_fill_time) as used; digest is a
// hash of the stamp.
func StampKey(digest string) string { return "formq:stamp:" + digest }

// StateReadKey marks a formq_state token as read; id is the token's own
// random id, so each token opens once.
func StateReadKey(id string) string { return "formq:stateread:" + id }

// DigestSentKey marks the daily digest of an action for a day (its date
// in the digest's timezone) as sent, or as skipped when there was none.
func DigestSentKey(action, day string) string { return "formq:digest:sent:" + action + ":" + day }

// DigestLockKey is held by the worker sending that digest, so the fleet
// sends it once; it expires should that worker die.
func DigestLockKey(action, day string) string { return "formq:digest:lock:" + action + ":" + day }
