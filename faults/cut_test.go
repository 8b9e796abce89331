//go:build faults

package faults

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

// slowAfter gives the first fast bytes at once, then 256 KiB every 50 ms,
// and closes reached when the fast part is read.
type slowAfter struct {
	r       *bytes.Reader
	fast    int64
	reached chan struct{}
	closed  bool
	read    atomic.Int64
}

func (b *slowAfter) Read(p []byte) (int, error) {
	if int64(b.r.Size())-int64(b.r.Len()) >= b.fast {
		if !b.closed {
			b.closed = true
			close(b.reached)
		}
		time.Sleep(50 * time.Millisecond)
		p = p[:min(len(p), 256<<10)]
	}
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// TestAPICutMidStreamedUpload cuts the API, by SIGTERM (its 5 s drain
// ends before the upload does) and by SIGKILL, in the middle of a 64 MiB
// upload sent as browsers send one: a request with a Content-Length,
// which formq streams to S3 as one PUT of the size the length predicts.
// Expected: no object at the file's key (only a partial object under
// uploads/_partial/, or nothing), the drain's answer a 503 with
// Retry-After, and nothing left once a worker's janitor (every 1 s, min
// age 3 s) has swept.
func TestAPICutMidStreamedUpload(t *testing.T) {
	file := make([]byte, 64<<20)
	for i := range file {
		file[i] = byte(i*7 + i>>12)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "big.bin")
	fw.Write(file)
	mw.Close()
	r := testenv.StartRedis(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		name := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig]
		t.Run(name, func(t *testing.T) {
			started := time.Now()
			s3 := testenv.StartS3(t)
			st := newStack(t, r.URL(), s3, map[string]string{"FORMQ_JANITOR_INTERVAL": "1s", "FORMQ_JANITOR_MIN_AGE": "3s"})
			api := start(t, st.apiBin, "api", st.env)
			ctx := context.Background()
			store := storeOf(t, s3)
			count := func() (parts, objects, files int) {
				ups, err := store.MultipartUploads(ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				keys, err := store.List(ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					if !strings.HasPrefix(k, submission.PartialPrefix) {
						files++
					}
				}
				return len(ups), len(keys), files
			}

			src := &slowAfter{r: bytes.NewReader(body.Bytes()), fast: 24 << 20, reached: make(chan struct{})}
			req, _ := http.NewRequest(http.MethodPost, api.URL+"/actions/upload", src)
			req.ContentLength = int64(body.Len())
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Accept", "application/json")
			answered := make(chan string, 1)
			// The request is written and the answer read side by side on
			// one connection, as a browser does. Go's own client is no
			// judge here: when the answer comes while it still writes the
			// body, it closes the connection itself and, about one time in
			// two, reports its failed write ("use of closed network
			// connection") instead of the answer it read.
			go func() { answered <- teststack.AnswerWhileSending(req) }()
			<-src.reached
			time.Sleep(time.Second) // the API's PUT is well under way
			c := cleanup{scenario: "API " + name + " mid 64 MiB upload with a Content-Length (one streamed PUT), janitor every 1s, min age 3s", sentMiB: int(src.read.Load() >> 20)}
			if sig == syscall.SIGKILL {
				api.Kill()
			} else {
				api.Terminate()
			}
			c.answer = <-answered
			if sig == syscall.SIGTERM {
				expect(t, &c.failed, c.answer == `503, Retry-After "5"`, "the drain answered %s, want 503 with Retry-After", c.answer)
			}
			time.Sleep(2 * time.Second) // the S3 server finishes what it was given
			c.multipartBefore, c.objectsBefore, c.filesBefore = count()
			expect(t, &c.failed, c.filesBefore == 0, "the cut upload left %d objects at a file's key", c.filesBefore)
			awaitJanitor(t, st, &c, started, func() (int, int) {
				parts, objects, _ := count()
				return parts, objects
			})
		})
	}
}
