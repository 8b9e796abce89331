package formq_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
	"github.com/formq/formq/uploads"
)

// cutUploadActions accepts one large file, so that a browser-like upload
// (a request with a Content-Length, parts without their own) is streamed
// to S3 as one PUT of the size the request's length predicts.
const cutUploadActions = `actions:
  upload:
    uploads:
      file: {max_size: 64MB}
    max_body: 80MB
`

// slowBody gives fast bytes of data at once, then the rest slowly, and
// closes sent once the fast part is read.
type slowBody struct {
	r    *bytes.Reader
	fast int64
	sent chan struct{}
	once bool
}

func (b *slowBody) Read(p []byte) (int, error) {
	read := int64(b.r.Size()) - int64(b.r.Len())
	if read >= b.fast {
		if !b.once {
			b.once = true
			close(b.sent)
		}
		time.Sleep(50 * time.Millisecond)
		p = p[:min(len(p), 64<<10)]
	}
	return b.r.Read(p)
}

// TestCutUploadLeavesNoFile cuts the API in the middle of a 12 MB upload
// sent with a Content-Length, once by SIGTERM (its shutdown drain ends
// before the upload does) and once by SIGKILL, and looks at what the
// bucket holds: no object may look like a stored file (under the
// action's uploads/ prefix). A cut PUT used to be stored by the S3
// server as far as it got. The drain refuses the upload it cuts with 503
// and Retry-After, read while the client is still sending as a browser
// reads it; so it does for an upload without a Content-Length, cut in
// the middle of its multipart upload.
func TestCutUploadLeavesNoFile(t *testing.T) {
	apiBin := testenv.Build(t, "", "./cmd/api")
	r := testenv.StartRedis(t)
	file := make([]byte, 12<<20)
	for i := range file {
		file[i] = byte(i*7 + i>>12)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "big.bin")
	fw.Write(file)
	mw.Close()

	for _, tt := range []struct {
		name    string
		sig     syscall.Signal
		chunked bool  // no Content-Length: a multipart upload of 8 MiB parts
		fast    int64 // bytes sent at once, before the slow rest
	}{
		{"SIGTERM", syscall.SIGTERM, false, 4 << 20},
		{"SIGKILL", syscall.SIGKILL, false, 4 << 20},
		{"SIGTERM without a Content-Length", syscall.SIGTERM, true, 9 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s3 := testenv.StartS3(t)
			actions := filepath.Join(t.TempDir(), "actions.yaml")
			if err := os.WriteFile(actions, []byte(cutUploadActions), 0o644); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{
				"FORMQ_ENV": "development", "FORMQ_ADDR": "127.0.0.1:0",
				"FORMQ_REDIS_URL": r.URL(), "FORMQ_S3_CREATE_BUCKET": "true", "FORMQ_ACTIONS": actions,
				// The drain cuts what still runs after 1.5 s and has 0.5 s
				// to answer it.
				"FORMQ_SHUTDOWN_TIMEOUT": "2s",
			}
			for k, v := range s3.Env() {
				env[k] = v
			}
			api := teststack.StartProcess(t, apiBin, "api", env)

			src := &slowBody{r: bytes.NewReader(body.Bytes()), fast: tt.fast, sent: make(chan struct{})}
			req, _ := http.NewRequest(http.MethodPost, api.URL+"/actions/upload", src)
			req.ContentLength = int64(body.Len())
			if tt.chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Accept", "application/json")
			answered := make(chan string, 1)
			go func() { answered <- teststack.AnswerWhileSending(req) }()
			select {
			case <-src.sent:
			case a := <-answered:
				t.Fatalf("answered before the cut: %s", a)
			}
			time.Sleep(300 * time.Millisecond) // the API's PUT is under way
			if tt.sig == syscall.SIGKILL {
				api.Kill()
			} else {
				api.Terminate()
			}
			if a := <-answered; tt.sig == syscall.SIGTERM && a != `503, Retry-After "5"` {
				t.Errorf("the drain answered %s, want 503 with Retry-After", a)
			}

			store, err := uploads.NewStore(context.Background(), uploads.Config{
				Endpoint: s3.Endpoint, Region: s3.Region, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
			})
			if err != nil {
				t.Fatal(err)
			}
			// The S3 server finishes what it was given after the
			// connection closed: look for a while.
			end := time.Now().Add(2 * time.Second)
			for time.Now().Before(end) {
				keys, err := store.List(context.Background(), "uploads/")
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					if !strings.HasPrefix(k, submission.PartialPrefix) {
						obj, _ := store.Head(context.Background(), k)
						t.Fatalf("the cut upload left %s (%d bytes of %d) in the bucket", k, obj.Size, len(file))
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}
