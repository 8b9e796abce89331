package routes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/formq/formq/actions/staging"
	"github.com/formq/formq/uploads"
)

// postPresign asks for a presigned direct upload.
func postPresign(t *testing.T, st *upStack, in map[string]string) (*http.Response, staging.PresignAnswer) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, st.url+"/uploads/presign", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a staging.PresignAnswer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return resp, a
}

// presignRef asks for a presigned direct upload that must be granted.
func presignRef(t *testing.T, st *upStack, in map[string]string) staging.PresignAnswer {
	t.Helper()
	resp, a := postPresign(t, st, in)
	if resp.StatusCode != http.StatusCreated || a.URL == "" {
		t.Fatalf("presign: status %d, %+v", resp.StatusCode, a)
	}
	return a
}

// postToS3 posts a file straight to S3 with a presign's form fields, as a
// browser (or an attacker holding the same fields) would. It returns S3's
// status; it may run outside the test's goroutine.
func postToS3(p staging.PresignAnswer, data []byte) (int, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range p.Fields {
		_ = w.WriteField(k, v)
	}
	fw, _ := w.CreateFormFile("file", "me.png")
	_, _ = fw.Write(data)
	_ = w.Close()
	resp, err := http.Post(p.URL, w.FormDataContentType(), &buf)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func mustPostToS3(t *testing.T, p staging.PresignAnswer, data []byte) {
	t.Helper()
	if code, err := postToS3(p, data); err != nil || code >= 300 {
		t.Fatalf("S3 refused the presigned upload: %d %v", code, err)
	}
}

// TestAttackSwapStagedUploadWhileChecked overwrites a presigned upload
// (its POST stays valid until the reference expires) while submissions
// attach it, flipping between a small PNG that passes the field's checks
// and a 300 KB HTML page that passes only the profile's. No accepted
// submission may store anything but the small PNG.
func TestAttackSwapStagedUploadWhileChecked(t *testing.T) {
	st := startUploads(t)
	ctx := context.Background()
	small := pngOf(2_000)                                                             // fits race-test's avatar: 10KB, image/png
	large := []byte("<html><script>alert(1)</script>" + strings.Repeat(" ", 300_000)) // fits the avatars profile's 1MB only
	const rounds = 80
	var accepted, refused, changed, writes int
	for i := range rounds {
		p := presignRef(t, st, map[string]string{"profile": "avatars", "contentType": "image/png"})
		mustPostToS3(t, p, small)
		stop, done := make(chan struct{}), make(chan int)
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					done <- n
					return
				default:
				}
				data := large
				if n%2 == 1 {
					data = small
				}
				if _, err := postToS3(p, data); err == nil {
					n++
				}
			}
		}()
		resp, a := post(t, st.url+"/actions/race-test", strings.NewReader(url.Values{"name": {"Ada"}, "avatar": {p.Ref}}.Encode()), "application/x-www-form-urlencoded")
		close(stop)
		writes += <-done
		switch resp.StatusCode {
		case http.StatusAccepted:
			accepted++
			f := a.Submission.Files[0]
			got, err := st.store.Get(ctx, f.Key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, small) || f.Size != int64(len(small)) || f.ContentType != "image/png" {
				t.Errorf("round %d: stored %d bytes sniffing as %s in a 10KB image/png field (answered size %d, %s)",
					i, len(got), uploads.Sniff(got[:min(len(got), uploads.SniffLen)]), f.Size, f.ContentType)
			}
		case http.StatusUnprocessableEntity:
			refused++
			if len(a.Errors["avatar"]) == 0 {
				t.Errorf("round %d: 422 without an error on the field: %+v", i, a)
			}
			if strings.Contains(strings.Join(a.Errors["avatar"], " "), "changed while it was checked") {
				changed++
			}
		default:
			t.Fatalf("round %d: status %d, %+v", i, resp.StatusCode, a)
		}
	}
	keys, err := st.store.List(ctx, "uploads/race-test/")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if got, err := st.store.Get(ctx, k); err != nil || len(got) > 10_000 || uploads.Sniff(got[:min(len(got), uploads.SniffLen)]) != "image/png" {
			t.Errorf("%s holds %d bytes (%v)", k, len(got), err)
		}
	}
	t.Logf("%d rounds, %d overwrites while attaching: %d accepted, %d refused (%d as changed while checked)", rounds, writes, accepted, refused, changed)
	if writes == 0 {
		t.Errorf("no overwrite in %d rounds: the race was never tried", rounds)
	}
}

// TestAttackReuseStagedReference sends one reference from POST /uploads
// in eight submissions at once, five times over: exactly one may have
// the file each time.
func TestAttackReuseStagedReference(t *testing.T) {
	st := startUploads(t)
	png := pngOf(5_000)
	const rounds, n = 5, 8
	for round := range rounds {
		resp, a := stage(t, st, "profile=avatars", part{field: "file", filename: "me.png", data: png})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /uploads: status %d", resp.StatusCode)
		}
		ref := a.Uploads[0].Ref
		codes := make([]int, n)
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := strings.NewReader(url.Values{"name": {"Ada"}, "avatar": {ref}}.Encode())
				req, _ := http.NewRequest(http.MethodPost, st.url+"/actions/upload-test", body)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Accept", "application/json")
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer r.Body.Close()
				codes[i] = r.StatusCode
				_ = json.NewDecoder(r.Body).Decode(&answers[i])
			}()
		}
		wg.Wait()
		ok := 0
		for i, c := range codes {
			switch c {
			case http.StatusAccepted:
				ok++
			case http.StatusUnprocessableEntity:
				if len(answers[i].Errors["avatar"]) == 0 {
					t.Errorf("422 without an error on the field: %+v", answers[i])
				}
			default:
				t.Errorf("status %d, %+v", c, answers[i])
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d of %d submissions were accepted with one reference (codes %v), want exactly 1", round, ok, n, codes)
		}
	}
}

// TestAttackReusePresignedReference uploads the file again with a
// presign's fields after a submission used its reference: the reference
// stays used.
func TestAttackReusePresignedReference(t *testing.T) {
	st := startUploads(t)
	p := presignRef(t, st, map[string]string{"profile": "avatars", "contentType": "image/png"})
	png := pngOf(4_000)
	mustPostToS3(t, p, png)
	submit := func() (*http.Response, answer) {
		return submitRefs(t, st, url.Values{"name": {"Ada"}, "avatar": {p.Ref}})
	}
	if resp, a := submit(); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first use: status %d, %+v", resp.StatusCode, a)
	}
	mustPostToS3(t, p, png)
	resp, a := submit()
	msg := strings.Join(a.Errors["avatar"], " ")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(msg, "already") {
		t.Errorf("second use after uploading again: status %d, errors %v; want 422 saying it was already used", resp.StatusCode, a.Errors)
	}
}

// TestRefusedSubmissionGivesItsReferenceBack: a submission refused for
// another field does not use up the reference; the corrected one has it.
func TestRefusedSubmissionGivesItsReferenceBack(t *testing.T) {
	st := startUploads(t)
	_, a := stage(t, st, "profile=avatars", part{field: "file", filename: "me.png", data: pngOf(3_000)})
	ref := a.Uploads[0].Ref
	if resp, a := submitRefs(t, st, url.Values{"name": {"A"}, "avatar": {ref}}); resp.StatusCode != http.StatusUnprocessableEntity || len(a.Errors["name"]) == 0 {
		t.Fatalf("short name: status %d, %+v", resp.StatusCode, a)
	}
	if resp, a := submitRefs(t, st, url.Values{"name": {"Ada"}, "avatar": {ref}}); resp.StatusCode != http.StatusAccepted || len(a.Submission.Files) != 1 {
		t.Fatalf("retry with the same reference: status %d, %+v", resp.StatusCode, a)
	}
}
