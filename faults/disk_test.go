//go:build faults

package faults

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
)

// smallDisk mounts a tmpfs of size bytes on a new directory for the
// test, unmounted when it ends (root is needed, as for `make faults`).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs for the S3 server (the suite runs as root): %v %s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file into dir until the filesystem is full.
func fill(dir string) (int64, error) {
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	var n int64
	for {
		k, err := f.Write(chunk)
		n += int64(k)
		if errors.Is(err, syscall.ENOSPC) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// uploadLoad posts files to the upload action and keeps what each got.
type uploadLoad struct {
	mu                         sync.Mutex
	posted, acked, unavailable int
	noRetryAfter               int
	other                      map[string]int
}

// count records one upload's answer.
func (ul *uploadLoad) count(resp *http.Response, err error) {
	ul.mu.Lock()
	defer ul.mu.Unlock()
	ul.posted++
	switch {
	case err != nil:
		ul.other[errorKind(err)]++
		return
	case resp.StatusCode == http.StatusAccepted:
		ul.acked++
	case resp.StatusCode == http.StatusServiceUnavailable:
		ul.unavailable++
		if resp.Header.Get("Retry-After") == "" {
			ul.noRetryAfter++
		}
	default:
		b, _ := io.ReadAll(resp.Body)
		ul.other[fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 80)]))]++
	}
	resp.Body.Close()
}

// TestS3DiskFull runs versitygw on a 128 MB tmpfs, under 50 posts/s and
// an upload every 500 ms (256 KiB, and every sixth one 9 MiB: one
// streamed PUT of the predicted size), fills the filesystem for 10 s and
// frees it. Expected: while it is full, uploads are refused with 503 and
// Retry-After; posts without files, which need no S3 to be accepted, are
// accepted, and the worker, whose writes fail meanwhile, completes them
// once space is free; nothing acknowledged is lost or doubled; and
// afterwards every file object in the bucket is one acknowledged upload
// whole (its size and SHA-256): nothing truncated or half-stored.
func TestS3DiskFull(t *testing.T) {
	started := time.Now()
	r := testenv.StartRedis(t)
	disk := smallDisk(t, "128m")
	s3, _ := testenv.StartPrivateS3In(t, filepath.Join(disk, "s3"))
	st := newStack(t, r.URL(), s3, nil)
	api := start(t, st.apiBin, "api", st.env)
	_ = start(t, st.workerBin, "worker", st.env)

	small, big := pngLike(256<<10, 1), pngLike(9<<20, 2)
	sums := map[[32]byte]int{sha256.Sum256(small): len(small), sha256.Sum256(big): len(big)}
	ul := &uploadLoad{other: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		client := &http.Client{Timeout: clientTimeout}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			file := small
			if i%6 == 5 {
				file = big
			}
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			fw, _ := mw.CreateFormFile("file", "f.png")
			fw.Write(file)
			mw.Close()
			req, _ := http.NewRequest(http.MethodPost, api.URL+"/actions/upload", &body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Accept", "application/json")
			ul.count(client.Do(req))
		}
	})
	freed := make(chan time.Time, 1)
	var filled int64
	var fillErr error
	go func() {
		time.Sleep(6 * time.Second)
		filled, fillErr = fill(disk)
		time.Sleep(10 * time.Second)
		if err := os.Remove(filepath.Join(disk, "filler")); err != nil && fillErr == nil {
			fillErr = err
		}
		freed <- time.Now()
	}()
	l := runLoad(api.URL, 50, 25*time.Second)
	close(stop)
	wg.Wait()
	at := <-freed
	if fillErr != nil {
		t.Fatalf("filling the S3 server's disk: %v", fillErr)
	}
	hr := measure(t, fmt.Sprintf("S3 disk full (128 MB tmpfs, %d MB filler) for 10s, 50 posts/s", filled>>20), started, r.Client(t), l, 60*time.Second, at)
	expect(t, &hr.failed, hr.caught > 0, "no submission was held up by the full disk: the worker never met it")
	expect(t, &hr.failed, hr.otherFailure == 0, "%d answers neither 202 nor 503: %v", hr.otherFailure, hr.otherKinds)
	expect(t, &hr.failed, hr.backAfter >= 0, "no post was acknowledged after the disk was freed")
	record(t, hr)

	// The uploads, and what the bucket holds of them.
	name := "S3 disk full: an upload every 500ms (256 KiB, every sixth 9 MiB)"
	var files, whole int
	var bad []string
	err := filepath.WalkDir(s3.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s3.Dir, p)
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") || rel == "uploads/_partial" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasPrefix(rel, "uploads/") {
			return nil
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if sums[sha256.Sum256(b)] == len(b) {
			whole++
		} else {
			bad = append(bad, fmt.Sprintf("%s (%d bytes)", rel, len(b)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ur := row{scenario: name, posted: ul.posted, acked: ul.acked, unavailable: ul.unavailable, noRetryAfter: ul.noRetryAfter,
		backAfter: notMeasured, took: time.Since(started), otherKinds: ul.other}
	for _, n := range ul.other {
		ur.otherFailure += n
	}
	ur.lost = max(0, ul.acked-whole)
	expect(t, &ur.failed, len(bad) == 0, "%d file objects are not a whole upload: %v", len(bad), bad)
	expect(t, &ur.failed, files == ul.acked, "%d file objects for %d acknowledged uploads", files, ul.acked)
	expect(t, &ur.failed, ul.unavailable > 0 && ul.noRetryAfter == 0, "%d uploads refused with 503, %d of them without Retry-After", ul.unavailable, ul.noRetryAfter)
	expect(t, &ur.failed, ur.otherFailure == 0, "%d uploads answered neither 202 nor 503: %v", ur.otherFailure, ul.other)
	record(t, ur)
}

// pngLike is n bytes that sniff as PNG, different for each seed.
func pngLike(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>11) ^ seed
	}
	copy(b, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	return b
}
