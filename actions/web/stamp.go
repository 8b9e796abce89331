package web

import (
	"strings"
	"time"

	"github.com/formq/formq/actions"
)

// FieldRendered carries the sealed time a hosted form was rendered, for
// actions with min_fill_time.
const FieldRendered = "_rendered"

// RenderedTTL is how long a render stamp proves anything: an older one
// counts as no stamp.
const RenderedTTL = 24 * time.Hour

func renderedPurpose(action string) string { return "rendered:" + action }

// SealRendered seals now as a render stamp of a: what a hosted form of an
// action with min_fill_time carries in _rendered.
func SealRendered(sealer actions.Sealer, a *actions.Action, now time.Time) (string, error) {
	return sealer.Seal(renderedPurpose(a.Name), now.UnixMilli(), RenderedTTL)
}

// OpenRendered opens a _rendered stamp of a: the time it sealed, or an
// error (matching actions.ErrTokenExpired for an authentic old stamp).
func OpenRendered(sealer actions.Sealer, a *actions.Action, value string) (time.Time, error) {
	var at int64
	err := sealer.Open(renderedPurpose(a.Name), strings.TrimSpace(value), &at)
	return time.UnixMilli(at), err
}
