package formq_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
)

// TestSlowUploadsCannotStarveOthers is the trickler attack at a small
// scale: 10 clients (distinct addresses behind a trusted proxy) send
// 300 KiB, which takes a part buffer, and then trickle a byte every
// 100 ms, against a budget of 4 buffers. They are cut with 408 and store
// nothing; normal 1 MiB uploads sent meanwhile all complete or are told
// 503 with Retry-After at once, and none hangs.
func TestSlowUploadsCannotStarveOthers(t *testing.T) {
	st := teststack.Start(t, map[string]string{
		"FORMQ_UPLOAD_PART_SIZE":      "5MB",
		"FORMQ_UPLOAD_MEMORY":         "20MB", // 4 part buffers
		"FORMQ_UPLOAD_BUFFER_WAIT":    "3s",
		"FORMQ_UPLOAD_CLIENT_BUFFERS": "2",
		"FORMQ_UPLOAD_MIN_RATE":       "64KB",
		"FORMQ_UPLOAD_RATE_PERIOD":    "1s",
		"FORMQ_TRUSTED_PROXIES":       "127.0.0.1/32",
	})
	url := st.APIURL + "/actions/create-user"
	client := &http.Client{Timeout: 30 * time.Second}

	const tricklers = 10
	type result struct {
		code int
		err  error
		took time.Duration
	}
	trickled := make([]result, tricklers)
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for i := range tricklers {
		wg.Go(func() {
			start := time.Now()
			code, err := teststack.Trickle(ctx, client, url, "avatar", 300<<10, i, 30*time.Second, "name", "Slow Client", "email", "slow@example.com")
			trickled[i] = result{code: code, err: err, took: time.Since(start)}
		})
	}
	teststack.WaitFor(t, 10*time.Second, "the tricklers holding every buffer", func() bool {
		return teststack.Gauge(t, st.APIURL, "formq_upload_buffers_in_use") >= 4
	})

	const normal = 16
	var mu sync.Mutex
	var took []time.Duration
	codes := map[int]int{}
	var nwg sync.WaitGroup
	for i := range normal {
		nwg.Go(func() {
			body, ctype := teststack.MultipartBody(t, map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"},
				map[string][]byte{"avatar": teststack.PNGLike(1<<20, uint64(1000+i))})
			start := time.Now()
			resp, err := teststack.PostFrom(client, url, ctype, bytes.NewReader(body.Bytes()), fmt.Sprintf("203.0.113.%d", i+1))
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("normal upload %d: %v after %s", i, err, d)
				return
			}
			resp.Body.Close()
			codes[resp.StatusCode]++
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			took = append(took, d)
		})
	}
	nwg.Wait()
	wg.Wait()
	slices.Sort(took)
	if len(took) > 0 {
		t.Logf("normal 1 MiB uploads under %d tricklers: %v; p50 %s, p99 %s, max %s", tricklers, codes,
			took[len(took)/2], took[(len(took)*99)/100], took[len(took)-1])
	}
	if codes[http.StatusAccepted] != normal {
		t.Errorf("normal uploads answered %v; want all %d accepted", codes, normal)
	}
	var cut int
	for i, r := range trickled {
		t.Logf("trickler %d: %d %v after %s", i, r.code, r.err, r.took)
		if r.code == http.StatusRequestTimeout || (r.code == 0 && r.err != nil) || r.code == http.StatusServiceUnavailable {
			cut++
		} else {
			t.Errorf("trickler %d: %d %v; want it cut (408) or refused (503)", i, r.code, r.err)
		}
	}
	// Nothing of the tricklers is stored: only the accepted files are.
	objs := listObjects(t, st, "uploads/create-user/")
	if len(objs) != codes[http.StatusAccepted] {
		t.Errorf("%d objects stored for %d accepted uploads", len(objs), codes[http.StatusAccepted])
	}
	if n := teststack.Gauge(t, st.APIURL, "formq_upload_buffers_in_use"); n != 0 {
		t.Errorf("%v buffers still in use after every upload ended", n)
	}
}

func listObjects(t *testing.T, st *teststack.Stack, prefix string) []string {
	t.Helper()
	keys, err := st.Store.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
