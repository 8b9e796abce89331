package staging

import (
	"time"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/submission"
)

// KeptTTL is how long the reference of a kept file opens: a file of a
// submission refused by validation or by the app.
const KeptTTL = 30 * time.Minute

// KeepStaged seals references to the staged copies of a submission the
// app refused, for the upload fields of a, open KeptTTL from now: sent as
// the field's value, each attaches its file to the resend. Files of
// fields a no longer declares are left out.
func KeepStaged(sealer actions.Sealer, a *actions.Action, files []submission.StagedFile, now time.Time) map[string][]web.KeptFile {
	if sealer == nil || a == nil || len(files) == 0 {
		return nil
	}
	kept := map[string][]web.KeptFile{}
	for _, f := range files {
		u := a.Upload(f.Field)
		if u == nil {
			continue
		}
		r := Ref{Key: f.Staged, Action: a.Name, Field: u.Name, MaxSize: u.MaxSize, Types: u.Types,
			Size: f.Size, ContentType: f.ContentType, SHA256: f.SHA256, Filename: f.Filename, Kept: true,
			Expires: now.Add(KeptTTL).Unix()}
		token, err := SealRef(sealer, r, KeptTTL)
		if err != nil {
			continue
		}
		kept[u.Name] = append(kept[u.Name], web.KeptFile{Ref: token, Filename: f.Filename, Size: f.Size, ContentType: f.ContentType})
	}
	if len(kept) == 0 {
		return nil
	}
	return kept
}
