package formq_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

// TestUploadInFlightWhenS3HangsAnswers503: an upload whose file has
// arrived while S3 hangs (SIGSTOP after the API took the submission in)
// is answered 503 unavailable with Retry-After within a bound set by
// FORMQ_S3_STALL_TIMEOUT, instead of waiting for S3 forever, and the API
// takes submissions again once S3 is back.
func TestUploadInFlightWhenS3HangsAnswers503(t *testing.T) {
	const stall = time.Second
	r, _ := testenv.StartPrivateRedis(t)
	s, s3Srv := testenv.StartPrivateS3(t)
	st := teststack.StartOn(t, r, s, map[string]string{"FORMQ_S3_STALL_TIMEOUT": stall.String()})
	avatar := bigPNG(4 << 20)
	body, ctype := teststack.MultipartBody(t, map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"}, map[string][]byte{"avatar": avatar})
	raw := body.Bytes()

	// The first half of the body goes while S3 answers; then S3 hangs and
	// the rest follows, so the API stores the file into a hung S3.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, st.APIURL+"/actions/create-user", pr)
	req.ContentLength = int64(len(raw))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	type answer struct {
		code  int
		retry string
		err   error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			got <- answer{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- answer{code: resp.StatusCode, retry: resp.Header.Get("Retry-After")}
	}()
	half := len(raw) / 2
	if _, err := pw.Write(raw[:half]); err != nil {
		t.Fatal(err)
	}
	s3Srv.Pause(t)
	start := time.Now()
	if _, err := pw.Write(raw[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	a := <-got
	took := time.Since(start)
	s3Srv.Resume(t)
	t.Logf("upload into a hung S3: %d (Retry-After %q) after %s", a.code, a.retry, took)
	if a.err != nil || a.code != http.StatusServiceUnavailable || a.retry == "" {
		t.Fatalf("upload into a hung S3: %d, Retry-After %q, %v; want 503 with Retry-After", a.code, a.retry, a.err)
	}
	// The stalled PUT, then removing what it may have left, each bounded
	// by the stall timeout; the rest is margin for a loaded machine.
	if took > 20*stall {
		t.Errorf("the upload took %s to fail, want about %s", took, 2*stall)
	}
	teststack.WaitFor(t, 20*time.Second, "a submission accepted after S3 is back", func() bool {
		body, ctype := teststack.MultipartBody(t, map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"}, map[string][]byte{"avatar": avatar})
		resp, _ := teststack.Post(t, st.APIURL+"/actions/create-user", body, ctype, map[string]string{"Accept": "application/json"})
		return resp.StatusCode == http.StatusAccepted
	})
}

// bigPNG is a PNG signature and header chunk followed by n bytes of
// filler: it sniffs as image/png, which is all an upload checks.
func bigPNG(n int) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := []byte("IHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00")
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)-4))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	b.Write(bytes.Repeat([]byte{0x5a}, n))
	return b.Bytes()
}
