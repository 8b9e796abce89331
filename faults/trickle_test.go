//go:build faults

package faults

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
)

// TestFortyTricklersAtDefaults is the slow-client attack at full scale,
// with the deployment's default upload settings (256MB budget, 8MB
// parts, 4 buffers per client, 3s wait, 16KB/s over 5s): 40 clients, each
// from its own address, send 300 KiB of a file and then a byte every
// 100 ms, while 70 normal 1 MiB uploads arrive from other addresses, ten
// a second. It prints how the normal uploads fared; it fails only when a
// normal upload hangs (no answer within 30 s), a trickler is not cut, or a
// trickler's bytes are stored. The API and worker run in the test's
// process (teststack), so the load generator shares their CPU.
func TestFortyTricklersAtDefaults(t *testing.T) {
	const tricklers, normal = 40, 70
	started := time.Now()
	actionsFile := filepath.Join(t.TempDir(), "actions.yaml")
	if err := os.WriteFile(actionsFile, []byte(`actions:
  trickle:
    fields:
      name: {type: text, required: true}
    uploads:
      file: {max_size: 2MB, types: [image/png]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	st := teststack.Start(t, map[string]string{"FORMQ_TRUSTED_PROXIES": "127.0.0.1/32", "FORMQ_ACTIONS": actionsFile})
	url := st.APIURL + "/actions/trickle"
	client := &http.Client{Timeout: 30 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	trickleCodes := make([]int, tricklers)
	var twg sync.WaitGroup
	for i := range tricklers {
		twg.Go(func() {
			trickleCodes[i], _ = teststack.Trickle(ctx, client, url, "file", 300<<10, i, 60*time.Second, "name", "Slow Client")
		})
	}
	teststack.WaitFor(t, 20*time.Second, "the tricklers holding buffers", func() bool {
		return teststack.Gauge(t, st.APIURL, "formq_upload_buffers_in_use") >= 32
	})

	var mu sync.Mutex
	var took []time.Duration
	codes := map[int]int{}
	var hung int
	var nwg sync.WaitGroup
	for i := range normal {
		time.Sleep(100 * time.Millisecond)
		nwg.Go(func() {
			body := &bytes.Buffer{}
			mw := multipart.NewWriter(body)
			mw.WriteField("name", "Ada Lovelace")
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="file"; filename="ada.png"`)
			h.Set("Content-Type", "image/png")
			p, _ := mw.CreatePart(h)
			p.Write(teststack.PNGLike(1<<20, uint64(1000+i)))
			mw.Close()
			start := time.Now()
			resp, err := teststack.PostFrom(client, url, mw.FormDataContentType(), body, fmt.Sprintf("203.0.113.%d", i+1))
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				hung++
				t.Errorf("normal upload %d: no answer: %v after %s", i, err, d)
				return
			}
			resp.Body.Close()
			codes[resp.StatusCode]++
			if resp.StatusCode == http.StatusAccepted {
				took = append(took, d)
			}
		})
	}
	nwg.Wait()
	twg.Wait()

	cut := map[int]int{}
	for i, c := range trickleCodes {
		cut[c]++
		if c != http.StatusRequestTimeout && c != http.StatusServiceUnavailable && c != 0 {
			t.Errorf("trickler %d answered %d; want it cut (408) or refused (503)", i, c)
		}
	}
	stored, err := st.Store.List(context.Background(), "uploads/trickle/")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != codes[http.StatusAccepted] {
		t.Errorf("%d objects stored for %d accepted uploads: a trickler's bytes were kept", len(stored), codes[http.StatusAccepted])
	}
	slices.Sort(took)
	q := func(p int) string {
		if len(took) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fs", took[min(len(took)-1, len(took)*p/100)].Seconds())
	}
	fmt.Printf("\n| slow clients (defaults) | tricklers | their answers | normal 1 MiB uploads | accepted | 503 | no answer | accepted p50 / p99 / max | took |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| 40 tricklers, 70 normal at 10/s | %d | %v | %d | %d | %d | %d | %s / %s / %s | %.0fs |\n\n",
		tricklers, cut, normal, codes[http.StatusAccepted], codes[http.StatusServiceUnavailable], hung, q(50), q(99), q(100), time.Since(started).Seconds())
}
