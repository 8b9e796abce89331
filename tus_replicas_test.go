package formq_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
)

// startTusReplicas runs two API and two worker processes on the actions
// of the tus tests.
func startTusReplicas(t *testing.T, env map[string]string) *teststack.Replicas {
	t.Helper()
	return teststack.StartReplicas(t, tusEnv(t, env))
}

// TestTusResumedOnAnotherAPIProcessNeverSplices runs two API processes
// (and two workers) on one Redis and S3, as the shipped deployments do.
// A PATCH to an upload is under way on the first, 6MB in, when a PATCH
// of other bytes to the same upload from offset 0 arrives at the
// second: it must get a clean 409 (the offset moved) or store its whole
// file, never a file made of both clients' bytes, and the two may not
// both complete the upload.
func TestTusResumedOnAnotherAPIProcessNeverSplices(t *testing.T) {
	rs := startTusReplicas(t, nil)
	const n = 12 << 20
	fileA := pngStream{n: n}
	other := make([]byte, n)
	copy(other, pngSignature)
	rand.NewChaCha8([32]byte{'o', 't', 'h', 'e', 'r'}).Read(other[len(pngSignature):])

	resp, raw := teststack.Do(t, http.MethodPost, rs.API(0)+staging.TusPath+"?action=tus-test&field=video", nil, map[string]string{
		"Tus-Resumable": "1.0.0", "Upload-Length": strconv.Itoa(n), "Accept": "application/json",
	})
	upload := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	onB := rs.On(1, upload)

	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch, upload, pr)
		req.ContentLength = n
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", "0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		first <- r.StatusCode
	}()
	src := fileA.from(0)
	if _, err := io.CopyN(pw, src, 6<<20); err != nil {
		t.Fatal(err)
	}
	second := make(chan int, 1)
	go func() {
		r, _ := tusPatch(t, onB, 0, bytes.NewReader(other))
		second <- r.StatusCode
	}()
	var secondStatus int
	select {
	case secondStatus = <-second:
	case <-time.After(20 * time.Second):
	}
	// The second may only write once the first stopped writing: by then
	// the first was asked to stop and answered (its client resumes from
	// the offset HEAD answers).
	var firstStatus int
	select {
	case firstStatus = <-first:
	case <-time.After(2 * time.Second):
		t.Errorf("the second PATCH answered %d while the first still held the upload on the other process", secondStatus)
	}
	// The first client goes on sending the rest of its file.
	go func() {
		io.Copy(pw, src)
		pw.Close()
	}()
	if firstStatus == 0 {
		select {
		case firstStatus = <-first:
		case <-time.After(60 * time.Second):
			t.Fatal("the first PATCH never answered")
		}
	}
	if secondStatus == 0 {
		secondStatus = <-second
	}
	t.Logf("first PATCH (process A): %d; second PATCH (process B): %d", firstStatus, secondStatus)
	if firstStatus == http.StatusOK && secondStatus == http.StatusOK {
		t.Errorf("both PATCHes completed the upload")
	}
	if secondStatus != http.StatusConflict && secondStatus != http.StatusOK {
		t.Errorf("the second PATCH answered %d, want 409 or 200", secondStatus)
	}
	ctx := context.Background()
	keys, _ := rs.Store.List(ctx, submission.TusPrefix)
	sumOther := sha256.Sum256(other)
	for _, k := range keys {
		if _, sfx, ok := submission.ParseTusKey(k); !ok || sfx != "" {
			continue
		}
		if got := storedSHA256(t, rs.Store, k); got != fileA.sha256() && got != hex.EncodeToString(sumOther[:]) {
			t.Errorf("the stored upload %s is neither client's file: bytes of both were spliced", k)
		}
	}
	if off := tusOffset(t, upload); off != n && secondStatus == http.StatusOK {
		t.Errorf("the second PATCH answered 200 but the upload is at %d of %d", off, n)
	}
}
