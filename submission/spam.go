package submission

import "time"

// Spam verdicts. A submission of an action with a spam: setting is scored
// when it is accepted; at or over the action's threshold it is held in
// the Spam folder instead of running its steps.
const (
	// SpamHam passed the check: its steps run as usual.
	SpamHam = "ham"
	// SpamHeld is in the Spam folder: stored, its steps not run.
	SpamHeld = "spam"
	// SpamReleased was held, then released by an admin: its steps ran.
	SpamReleased = "released"
	// SpamConfirmed was held (or marked) and an admin confirmed it is
	// spam: it stays in the Spam folder until its time there ends.
	SpamConfirmed = "confirmed"
)

// StatusSpam is the status of a submission held in the Spam folder: final
// until an admin releases it.
const StatusSpam = "spam"

// Spam is a submission's spam verdict: what the check decided, the total
// score and every rule that added to it.
type Spam struct {
	Verdict string       `json:"verdict"`
	Score   float64      `json:"score"`
	Reasons []SpamReason `json:"reasons"`
	// At is when an admin last changed the verdict (released,
	// confirmed); zero until then.
	At time.Time `json:"at,omitzero"`
}

// Held reports whether the verdict keeps the submission in the Spam folder.
func (s *Spam) Held() bool {
	return s != nil && (s.Verdict == SpamHeld || s.Verdict == SpamConfirmed)
}

// SpamReason is one rule that scored a submission: its name (honeypot,
// too_fast, rate, captcha, links, blocked_words, blocked_domains,
// script, duplicate, model), what it added and why, for people.
type SpamReason struct {
	Rule   string  `json:"rule"`
	Score  float64 `json:"score"`
	Detail string  `json:"detail"`
}

// Spam folder and model keys in Redis:
//
//	formq:spam:folder          sorted set (lexical): index entries of the submissions in the Spam folder
//	formq:spam:verdicts        hash: id to its verdict (JSON of Spam)
//	formq:spam:labels          hash: id to the label the model learnt from it ("spam" or "ham")
//	formq:spam:model           hash: token counts ("s:" or "h:" and the token) and document counts ("docs:s", "docs:h")
//	formq:spam:seen:{action}:{digest}  counter of recent posts (duplicate bodies, a client's rate)
//
// A held submission is in formq:index:ids and the cards like any other,
// but in the Spam folder's sorted set instead of the inbox's.
const (
	SpamFolder   = "formq:spam:folder"
	SpamVerdicts = "formq:spam:verdicts"
	SpamLabels   = "formq:spam:labels"
	SpamModel    = "formq:spam:model"

	spamSeenPrefix = "formq:spam:seen:"
)

// SpamSeenKey counts recent posts of an action that share a digest (of a
// body, or of a client's address).
func SpamSeenKey(action, digest string) string { return spamSeenPrefix + action + ":" + digest }

// ReleaseTaskID is the task id of a held submission's release: one per
// submission, so a release runs its steps once.
func ReleaseTaskID(id string) string { return id + "-release" }
