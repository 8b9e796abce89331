package api

import (
	"github.com/formq/formq"
	"github.com/formq/formq/internal/redisstate"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/s3store"
)

// Disk and S3 bounds of resumable uploads, per API process.
const (
	// tusBufferedParts is how many received parts one upload may hold on
	// disk while an earlier one goes to S3.
	tusBufferedParts = 2
	// tusPartUploads is how many parts go to S3 at once, all uploads
	// together; each streams from its file on disk.
	tusPartUploads = 4
	// tusMinPart is S3's smallest part but the last.
	tusMinPart = 5 << 20
)

// tusComposer builds tusd's S3 store on formq's bucket and client, under
// submission.TusPrefix. Parts are cut at FORMQ_UPLOAD_PART_SIZE and
// buffered in files under FORMQ_TUS_TEMP_DIR, never in memory; a lock in
// Redis makes a resumed request, on this API process or another, stop
// the interrupted one and wait for it.
func tusComposer(cfg formq.Config, store *uploads.Store, locks *redisstate.TusLocker) *tusd.StoreComposer {
	s3 := s3store.New(store.Bucket(), store.S3Client())
	s3.ObjectPrefix = submission.TusPrefix
	s3.MinPartSize = tusMinPart
	s3.PreferredPartSize = max(int64(cfg.UploadPartSize), tusMinPart)
	s3.MaxBufferedParts = tusBufferedParts
	s3.TemporaryDirectory = cfg.TusTempDir
	s3.SetConcurrentPartUploads(tusPartUploads)
	composer := tusd.NewStoreComposer()
	s3.UseIn(composer)
	locks.UseIn(composer)
	return composer
}
