package routes_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/jobs"
	"github.com/formq/formq/submission"
)

// admin sends an admin request and decodes a JSON answer into out.
func admin(t *testing.T, st *teststack.Stack, method, path string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, st.APIURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, body)
		}
	}
	return resp
}

type listAnswer struct {
	OK          bool                `json:"ok"`
	Submissions []submission.Listed `json:"submissions"`
	Next        string              `json:"next"`
}

const inboxActions = `actions:
  contact:
    fields:
      email: {type: email, required: true}
      message: {type: textarea}
  apply:
    fields:
      email: {type: email, required: true}
    uploads:
      avatar: {max_size: 1MB, types: [image/png]}
    steps:
      - thumbnail: {field: avatar, sizes: [16]}
`

// TestInboxListsThousandSubmissionsInOrderOverPages posts 1,000
// submissions through the API, lets the worker store them, and reads
// them back newest first, 75 a page, each exactly once; filters by
// action, status and time narrow the listing.
func TestInboxListsThousandSubmissionsInOrderOverPages(t *testing.T) {
	st := startWithActions(t, inboxActions, nil)
	const n = 1000
	var wg sync.WaitGroup
	var failed atomic.Int32
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				form := url.Values{"email": {fmt.Sprintf("p%d@example.com", i)}}
				resp, _ := send(t, st, "contact", form, nil)
				if resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d posts were not accepted", failed.Load())
	}
	teststack.WaitFor(t, 90*time.Second, "1000 indexed submissions", func() bool {
		return st.RDB.HLen(context.Background(), submission.IndexIDs).Val() == n
	})
	// one of another action, to filter out
	if resp, raw := send(t, st, "apply", url.Values{"email": {"x@example.com"}}, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("apply: %d %s", resp.StatusCode, raw)
	}
	teststack.WaitFor(t, 30*time.Second, "the apply submission indexed", func() bool {
		return st.RDB.HLen(context.Background(), submission.IndexIDs).Val() == n+1
	})

	seen := map[string]bool{}
	var prev *submission.Listed
	cursor, pages := "", 0
	for {
		var page listAnswer
		if resp := admin(t, st, "GET", "/admin/submissions?action=contact&limit=75&cursor="+url.QueryEscape(cursor), &page); resp.StatusCode != http.StatusOK {
			t.Fatalf("page %d: %d", pages, resp.StatusCode)
		}
		pages++
		for i := range page.Submissions {
			it := page.Submissions[i]
			if seen[it.ID] {
				t.Fatalf("%s listed twice", it.ID)
			}
			seen[it.ID] = true
			if it.Action != "contact" {
				t.Fatalf("action filter let %s through", it.Action)
			}
			if prev != nil && (it.ReceivedAt.After(prev.ReceivedAt) || (it.ReceivedAt.Equal(prev.ReceivedAt) && it.ID > prev.ID)) {
				t.Fatalf("out of order: %v after %v", it, *prev)
			}
			prev = &it
		}
		if page.Next == "" {
			break
		}
		if len(page.Submissions) != 75 {
			t.Fatalf("page %d has %d items and a next cursor", pages, len(page.Submissions))
		}
		cursor = page.Next
	}
	if len(seen) != n || pages != 14 {
		t.Fatalf("listed %d submissions on %d pages, want %d on 14", len(seen), pages, n)
	}

	var all listAnswer
	admin(t, st, "GET", "/admin/submissions?limit=5", &all)
	if len(all.Submissions) != 5 || all.Submissions[0].Action != "apply" {
		t.Errorf("unfiltered listing should start with the newest (apply): %+v", all.Submissions)
	}
	teststack.WaitFor(t, 30*time.Second, "every submission completed", func() bool {
		var done listAnswer
		admin(t, st, "GET", "/admin/submissions?action=contact&status=completed&limit=500&cursor=", &done)
		return len(done.Submissions) == 500 && done.Next != ""
	})
	var none listAnswer
	admin(t, st, "GET", "/admin/submissions?status=failed&limit=10", &none)
	if len(none.Submissions) != 0 {
		t.Errorf("status=failed lists %d", len(none.Submissions))
	}
	// since/until: the middle of the listing.
	mid := prev.ReceivedAt // the oldest
	var later listAnswer
	admin(t, st, "GET", "/admin/submissions?action=contact&limit=500&until="+url.QueryEscape(mid.Add(time.Millisecond).Format(time.RFC3339Nano)), &later)
	for _, it := range later.Submissions {
		if it.ReceivedAt.After(mid) {
			t.Fatalf("until let %v through", it.ReceivedAt)
		}
	}
	for _, bad := range []string{"limit=0", "limit=x", "status=done", "since=yesterday", "cursor=zzz", "action=nope"} {
		var e errorBody
		resp := admin(t, st, "GET", "/admin/submissions?"+bad, &e)
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, e.Error.Code)
		}
	}
	if resp := admin(t, st, "GET", "/admin/submissions", &errorBody{}); resp.StatusCode != http.StatusOK {
		t.Errorf("with the token: %d", resp.StatusCode)
	}
	noToken, _ := http.Get(st.APIURL + "/admin/submissions")
	if noToken.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the token: %d", noToken.StatusCode)
	}
}

// TestInboxDetailThenErasureLeavesNothing: a submission with a file and a
// thumbnail variant, posted with an idempotency key, is read with a
// working download link, then erased: no object under its prefixes, no
// Redis key naming it, no idempotency entry, no index entry.
func TestInboxDetailThenErasureLeavesNothing(t *testing.T) {
	st := startWithActions(t, inboxActions, nil)
	img := pngBytes(t)
	body, ct := teststack.MultipartBody(t, map[string]string{"email": "erase-me@example.com"}, map[string][]byte{"avatar": img})
	resp, raw := teststack.Post(t, st.APIURL+"/actions/apply", body, ct, map[string]string{"Accept": "application/json", "Idempotency-Key": "erase-1"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post: %d %s", resp.StatusCode, raw)
	}
	var acc struct {
		Submission struct{ ID string } `json:"submission"`
	}
	json.Unmarshal(raw, &acc)
	id := acc.Submission.ID
	var d struct {
		Submission submission.Submission `json:"submission"`
		Status     *submission.Status    `json:"status"`
		Downloads  []struct {
			Key, URL, Filename string
		} `json:"downloads"`
	}
	teststack.WaitFor(t, 30*time.Second, "the submission completed", func() bool {
		r := admin(t, st, "GET", "/admin/submissions/"+id, &d)
		return r.StatusCode == http.StatusOK && d.Status != nil && d.Status.Status == submission.StatusCompleted
	})
	if d.Submission.Values["email"] != "erase-me@example.com" || len(d.Status.Steps) == 0 || d.Status.Steps[0].Type != "thumbnail" {
		t.Fatalf("detail: %+v %+v", d.Submission, d.Status)
	}
	if len(d.Downloads) != 1 {
		t.Fatalf("downloads: %+v", d.Downloads)
	}
	dl, err := http.Get(d.Downloads[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	if dl.StatusCode != http.StatusOK || !bytes.Equal(got, img) || !strings.Contains(dl.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download link: %d, %d bytes, %q", dl.StatusCode, len(got), dl.Header.Get("Content-Disposition"))
	}
	ctx := context.Background()
	prefix := submission.UploadsPrefix + "apply/" + id + "/"
	before, _ := st.Store.List(ctx, prefix)
	if len(before) < 2 {
		t.Fatalf("want the file and its thumbnail under %s, got %v", prefix, before)
	}
	if n := countKeys(t, st, "formq:idem:*"); n != 1 {
		t.Fatalf("idempotency entries before erasure: %d", n)
	}

	var erased struct {
		OK     bool     `json:"ok"`
		Erased []string `json:"erased"`
	}
	if r := admin(t, st, "DELETE", "/admin/submissions/"+id, &erased); r.StatusCode != http.StatusOK || !erased.OK {
		t.Fatalf("erase: %d %+v", r.StatusCode, erased)
	}
	for _, p := range []string{prefix, submission.RecordKey("apply", id)} {
		if left, _ := st.Store.List(ctx, p); len(left) != 0 {
			t.Errorf("left in S3 under %s: %v", p, left)
		}
	}
	keys, _ := st.RDB.Keys(ctx, "*").Result()
	for _, k := range keys {
		if strings.Contains(k, id) || strings.HasPrefix(k, "formq:idem:") {
			t.Errorf("left in Redis: %s", k)
		}
		if typ := st.RDB.Type(ctx, k).Val(); typ == "hash" || typ == "zset" {
			if k == submission.IndexIDs && st.RDB.HExists(ctx, k, id).Val() {
				t.Errorf("left in %s", k)
			}
			if typ == "zset" {
				if ms, _ := st.RDB.ZRange(ctx, k, 0, -1).Result(); strings.Contains(strings.Join(ms, ","), id) {
					t.Errorf("left in %s", k)
				}
			}
		}
	}
	if r := admin(t, st, "GET", "/admin/submissions/"+id, &errorBody{}); r.StatusCode != http.StatusNotFound {
		t.Errorf("detail after erasure: %d", r.StatusCode)
	}
	if r := admin(t, st, "DELETE", "/admin/submissions/"+id, &errorBody{}); r.StatusCode != http.StatusNotFound {
		t.Errorf("erasing twice: %d", r.StatusCode)
	}
}

// TestInboxExportsTenThousandAsCSVInConstantMemory seeds 10,000 stored
// records of 4KB each (40MB of CSV) in real S3 and the index, streams the
// CSV export and checks every row, the formula escaping, and that the
// process's heap stays far below the size of the export.
func TestInboxExportsTenThousandAsCSVInConstantMemory(t *testing.T) {
	st := startWithActions(t, inboxActions, nil)
	ctx := context.Background()
	idx := jobs.NewIndex(st.RDB, st.Store)
	const n = 10000
	filler := strings.Repeat("lorem ipsum ", 340) // ~4KB
	base := time.Now().Add(-time.Hour).UTC()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				sub := &submission.Submission{
					ID: fmt.Sprintf("01EXPORT%08d", i), Action: "contact", ReceivedAt: base.Add(time.Duration(i) * time.Millisecond),
					Values: map[string]any{"email": fmt.Sprintf("p%d@example.com", i), "message": filler}, Files: []submission.File{},
				}
				if i == 7 {
					sub.Values["message"] = "=HYPERLINK(\"http://evil.example\",\"click\")"
				}
				b, _ := json.Marshal(sub)
				if err := st.Store.PutJSON(ctx, submission.RecordKey(sub.Action, sub.ID), b); err != nil {
					t.Error(err)
				}
				if err := idx.Add(ctx, sub); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()

	old := debug.SetGCPercent(25)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	req, _ := http.NewRequest("GET", st.APIURL+"/admin/submissions/export?action=contact&format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := csv.NewReader(resp.Body)
	header, err := r.Read()
	if err != nil || strings.Join(header, ",") != "id,received_at,email,message,subject,client_ip,status" {
		t.Fatalf("header %v %v", header, err)
	}
	rows, bytesOut := 0, 0
	last := "~"
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		for _, c := range rec {
			bytesOut += len(c)
		}
		if rec[0] >= last {
			t.Fatalf("export not newest first: %s after %s", rec[0], last)
		}
		last = rec[0]
		if rec[0] == "01EXPORT00000007" && rec[3] != "'=HYPERLINK(\"http://evil.example\",\"click\")" {
			t.Errorf("formula not escaped: %q", rec[3])
		}
	}
	close(stop)
	sampler.Wait()
	if rows != n {
		t.Fatalf("exported %d rows, want %d", rows, n)
	}
	growth := int64(peak.Load()) - int64(baseHeap)
	rss := vmHWM()
	t.Logf("export of %d submissions: %.1f MB of cells; heap in use %.1f MB before, peak %.1f MB (growth %.1f MB); process peak RSS %s",
		n, float64(bytesOut)/1e6, float64(baseHeap)/1e6, float64(peak.Load())/1e6, float64(growth)/1e6, rss)
	if growth > 24<<20 {
		t.Errorf("the heap grew %.1f MB while exporting %.1f MB: not streamed", float64(growth)/1e6, float64(bytesOut)/1e6)
	}
}

// vmHWM is the process's peak resident set, from /proc.
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// TestInboxErasureByPersonalFieldLeavesNothing: a right-to-erasure
// request by the value of a personal field erases every submission that
// holds it (any case), files included, and nothing of anyone else's.
func TestInboxErasureByPersonalFieldLeavesNothing(t *testing.T) {
	st := startWithActions(t, `actions:
  signup:
    fields:
      email: {type: email, required: true, personal: true}
      note: {type: text}
    uploads:
      cv: {max_size: 1MB}
`, nil)
	ctx := context.Background()
	var mine, theirs []string
	post := func(email string, file bool) string {
		files := map[string][]byte{}
		if file {
			files["cv"] = []byte("%PDF-1.4 a cv\n")
		}
		body, ct := teststack.MultipartBody(t, map[string]string{"email": email, "note": "hi"}, files)
		resp, raw := teststack.Post(t, st.APIURL+"/actions/signup", body, ct, map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post: %d %s", resp.StatusCode, raw)
		}
		var acc struct {
			Submission struct{ ID string } `json:"submission"`
		}
		json.Unmarshal(raw, &acc)
		return acc.Submission.ID
	}
	mine = append(mine, post("ada@example.com", true), post("Ada@Example.com", false), post(" ADA@example.com", true))
	theirs = append(theirs, post("bob@example.com", true), post("ada@example.org", false))
	teststack.WaitFor(t, 30*time.Second, "every submission completed", func() bool {
		var done listAnswer
		admin(t, st, "GET", "/admin/submissions?action=signup&status=completed", &done)
		return len(done.Submissions) == 5
	})

	for _, bad := range []string{"action=signup&field=note&value=hi", "action=signup&field=email&value=", "action=nope&field=email&value=x"} {
		if r := admin(t, st, "DELETE", "/admin/submissions?"+bad, &errorBody{}); r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", bad, r.StatusCode)
		}
	}
	var erased struct {
		OK     bool     `json:"ok"`
		Erased []string `json:"erased"`
	}
	if r := admin(t, st, "DELETE", "/admin/submissions?action=signup&field=email&value="+url.QueryEscape("ada@EXAMPLE.com"), &erased); r.StatusCode != http.StatusOK {
		t.Fatalf("erase by email: %d", r.StatusCode)
	}
	if len(erased.Erased) != 3 {
		t.Fatalf("erased %v, want the 3 of ada@example.com", erased.Erased)
	}
	keys, _ := st.RDB.Keys(ctx, "*").Result()
	for _, id := range mine {
		for _, p := range []string{submission.UploadsPrefix + "signup/" + id + "/", submission.RecordKey("signup", id)} {
			if left, _ := st.Store.List(ctx, p); len(left) != 0 {
				t.Errorf("left in S3: %v", left)
			}
		}
		for _, k := range keys {
			if strings.Contains(k, id) {
				t.Errorf("left in Redis: %s", k)
			}
		}
		if st.RDB.HExists(ctx, submission.IndexIDs, id).Val() {
			t.Errorf("%s left in the index", id)
		}
	}
	if n := st.RDB.Exists(ctx, submission.PersonalKey("signup", "email", "ada@example.com")).Val(); n != 0 {
		t.Errorf("the personal index of the erased value is left")
	}
	for _, id := range theirs {
		if r := admin(t, st, "GET", "/admin/submissions/"+id, &struct{}{}); r.StatusCode != http.StatusOK {
			t.Errorf("someone else's submission %s: %d", id, r.StatusCode)
		}
	}
	if r := admin(t, st, "DELETE", "/admin/submissions?action=signup&field=email&value=ada@example.com", &erased); r.StatusCode != http.StatusOK || len(erased.Erased) != 0 {
		t.Errorf("erasing again: %d %v", r.StatusCode, erased.Erased)
	}
}
