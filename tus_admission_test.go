package formq_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
)

// tusCreateFrom creates a resumable upload of n bytes on apiURL as the
// client at ip would (the API trusts 127.0.0.1's X-Forwarded-For).
func tusCreateFrom(t *testing.T, apiURL, ip string, n int64) (*http.Response, []byte) {
	t.Helper()
	return teststack.Do(t, http.MethodPost, apiURL+staging.TusPath+"?action=tus-test&field=video", nil, map[string]string{
		"Tus-Resumable": "1.0.0", "Upload-Length": strconv.FormatInt(n, 10), "Accept": "application/json", "X-Forwarded-For": ip,
	})
}

// tusPatchFrom sends body to an upload from offset off as the client at
// ip, answering the status (0 when the request failed) and the body.
func tusPatchFrom(upload, ip string, off, n int64, body io.Reader) (int, http.Header, string) {
	req, err := http.NewRequest(http.MethodPatch, upload, body)
	if err != nil {
		return 0, nil, err.Error()
	}
	req.ContentLength = n
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// TestAttackTusPatchesTakeUploadBuffers: tus PATCHes went around upload
// admission (eight concurrent 40 MB PATCHes from one client were all
// taken, 213 MB of temporary disk). Now each PATCH holds one of the
// client's upload buffers while it runs: of six concurrent PATCHes from
// one client with two buffers, two are taken and the others answered
// 503 with Retry-After at once, with nothing written; they resume later.
// A PATCH slower than the minimum rate is cut with 408 too_slow.
func TestAttackTusPatchesTakeUploadBuffers(t *testing.T) {
	st := startTus(t, map[string]string{
		"FORMQ_TRUSTED_PROXIES": "127.0.0.1", "FORMQ_UPLOAD_CLIENT_BUFFERS": "2", "FORMQ_UPLOAD_BUFFER_WAIT": "500ms",
		"FORMQ_UPLOAD_MIN_RATE": "64KB", "FORMQ_UPLOAD_RATE_PERIOD": "2s",
	})
	const n, ip = 6 << 20, "198.51.100.5"
	file := pngStream{n: n}
	uploads := make([]string, 6)
	for i := range uploads {
		resp, raw := tusCreateFrom(t, st.APIURL, ip, n)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %d: %d %s", i, resp.StatusCode, raw)
		}
		uploads[i] = resp.Header.Get("Location")
	}
	// Each PATCH sends 1 MB, then the rest once all six were answered or
	// are under way for 3 s.
	release := make(chan struct{})
	type result struct {
		code  int
		retry string
		body  string
	}
	results := make([]result, len(uploads))
	var wg sync.WaitGroup
	for i, u := range uploads {
		wg.Go(func() {
			pr, pw := io.Pipe()
			go func() {
				src := file.from(0)
				if _, err := io.CopyN(pw, src, 1<<20); err != nil {
					pw.CloseWithError(err)
					return
				}
				<-release
				_, err := io.Copy(pw, src)
				pw.CloseWithError(err)
			}()
			code, h, body := tusPatchFrom(u, ip, 0, n, pr)
			pr.CloseWithError(io.ErrClosedPipe)
			results[i] = result{code, h.Get("Retry-After"), body}
		})
	}
	time.Sleep(3 * time.Second)
	inUse := teststack.Gauge(t, st.APIURL, "formq_upload_buffers_in_use")
	close(release)
	wg.Wait()
	taken, busy := 0, 0
	for i, r := range results {
		switch {
		case r.code == http.StatusOK || r.code == http.StatusNoContent:
			taken++
		case r.code == http.StatusServiceUnavailable && r.retry != "":
			busy++
			if off := tusOffset(t, uploads[i]); off != 0 {
				t.Errorf("a refused PATCH wrote %d bytes", off)
			}
		default:
			t.Errorf("PATCH %d: %d (Retry-After %q) %s", i, r.code, r.retry, r.body)
		}
	}
	t.Logf("of 6 concurrent PATCHes from one client: %d taken, %d refused busy; upload buffers in use while they ran: %v", taken, busy, inUse)
	if taken != 2 || busy != 4 || inUse != 2 {
		t.Errorf("%d PATCHes taken at once (buffers in use %v), %d refused; want the client's 2 buffers held and 4 refused", taken, inUse, busy)
	}
	// A refused upload resumes once buffers are free.
	for i, r := range results {
		if r.code == http.StatusServiceUnavailable {
			if code, _, body := tusPatchFrom(uploads[i], ip, 0, n, file.from(0)); code != http.StatusOK && code != http.StatusNoContent {
				t.Errorf("the refused upload %d sent again: %d %s", i, code, body)
			}
			break
		}
	}

	// Too slow: 4 KB a second against a minimum of 64 KB.
	resp, raw := tusCreateFrom(t, st.APIURL, "198.51.100.6", n)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	slow := resp.Header.Get("Location")
	pr, pw := io.Pipe()
	go func() {
		src := file.from(0)
		for range 100 {
			if _, err := io.CopyN(pw, src, 400); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	start := time.Now()
	code, _, body := tusPatchFrom(slow, "198.51.100.6", 0, n, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	took := time.Since(start)
	t.Logf("a PATCH at 4KB/s: %d after %s", code, took.Round(100*time.Millisecond))
	if code != http.StatusRequestTimeout || !strings.Contains(body, "too_slow") || took > 6*time.Second {
		t.Errorf("a PATCH at 4KB/s answered %d after %s: %s; want 408 too_slow within a few seconds", code, took, body)
	}
}

// TestAttackTusUnfinishedUploadsCapped: one client could create as many
// resumable uploads as it liked (200 anonymous 50 MB creations went
// through in 6 s), each holding an S3 multipart upload until it expires.
// Now a client has at most FORMQ_TUS_CLIENT_UPLOADS unfinished uploads,
// counted across the API processes: creations alternately on two APIs
// admit 5 of 8, then 429 rate_limited naming the cap; another client is
// still admitted, and a cancelled or finished upload frees its place.
func TestAttackTusUnfinishedUploadsCapped(t *testing.T) {
	rs := teststack.StartReplicasOn(t, testenv.StartRedis(t), testenv.StartS3(t), 2, 0, tusEnv(t, map[string]string{
		"FORMQ_TRUSTED_PROXIES": "127.0.0.1", "FORMQ_TUS_CLIENT_UPLOADS": "5",
	}))
	const ip = "198.51.100.8"
	var created []string
	refused := 0
	for i := range 8 {
		resp, raw := tusCreateFrom(t, rs.API(i), ip, 1<<20)
		switch resp.StatusCode {
		case http.StatusCreated:
			created = append(created, resp.Header.Get("Location"))
		case http.StatusTooManyRequests:
			refused++
			if !strings.Contains(string(raw), "rate_limited") || !strings.Contains(string(raw), "unfinished") || resp.Header.Get("Retry-After") == "" {
				t.Errorf("refusal %d: %s, Retry-After %q", i, raw, resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("create %d: %d %s", i, resp.StatusCode, raw)
		}
	}
	t.Logf("of 8 creations from one client on two APIs: %d created, %d refused", len(created), refused)
	if len(created) != 5 || refused != 3 {
		t.Fatalf("%d created, %d refused; want 5 and 3", len(created), refused)
	}
	if resp, raw := tusCreateFrom(t, rs.API(1), "198.51.100.9", 1<<20); resp.StatusCode != http.StatusCreated {
		t.Errorf("another client: %d %s", resp.StatusCode, raw)
	}
	// A cancelled upload (on the other API) frees a place.
	if resp, raw := teststack.Do(t, http.MethodDelete, rs.On(1, created[0]), nil, map[string]string{"Tus-Resumable": "1.0.0"}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("cancel: %d %s", resp.StatusCode, raw)
	}
	resp, raw := tusCreateFrom(t, rs.API(0), ip, 1<<20)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("after a cancel: %d %s", resp.StatusCode, raw)
	}
	// So does a finished one, finished from another address.
	file := pngStream{n: 1 << 20}
	if code, _, body := tusPatchFrom(rs.On(1, created[1]), "203.0.113.50", 0, 1<<20, file.from(0)); code != http.StatusOK {
		t.Fatalf("finish: %d %s", code, body)
	}
	if resp, raw := tusCreateFrom(t, rs.API(1), ip, 1<<20); resp.StatusCode != http.StatusCreated {
		t.Errorf("after a finished upload: %d %s", resp.StatusCode, raw)
	}
	if resp, raw := tusCreateFrom(t, rs.API(0), ip, 1<<20); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("at the cap again: %d %s", resp.StatusCode, fmt.Sprintf("%.200s", raw))
	}
}
