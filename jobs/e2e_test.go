package jobs_test

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq/actions/status"
	"github.com/formq/formq/actions/submit"
	"github.com/formq/formq/actions/web"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/submission"
)

// avatarPNG is a small picture to upload.
func avatarPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	img.Set(0, 0, color.NRGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// submitForm posts a create-user form and returns the submission id.
func submitForm(t *testing.T, st *teststack.Stack, name string, avatar []byte) string {
	t.Helper()
	files := map[string][]byte{}
	if avatar != nil {
		files["avatar"] = avatar
	}
	body, ctype := teststack.MultipartBody(t, map[string]string{"name": name, "email": "ada@example.com"}, files)
	resp, raw := teststack.Post(t, st.APIURL+"/actions/create-user", body, ctype, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, raw)
	}
	var ok submit.Accepted
	if err := json.Unmarshal(raw, &ok); err != nil {
		t.Fatal(err)
	}
	return ok.Submission.ID
}

// e2eAdminToken reads every submission and event in these tests.
const e2eAdminToken = "test-admin-token-123"

func getStatus(t *testing.T, st *teststack.Stack, id string) (int, status.StatusAnswer, []byte) {
	t.Helper()
	// The admin token reads the full status of any submission.
	req, _ := http.NewRequest(http.MethodGet, st.APIURL+"/submissions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ans status.StatusAnswer
	_ = json.Unmarshal(raw, &ans)
	return resp.StatusCode, ans, raw
}

func waitDone(t *testing.T, st *teststack.Stack, id string) *submission.Status {
	t.Helper()
	var last status.StatusAnswer
	teststack.WaitFor(t, 30*time.Second, "submission "+id+" to finish", func() bool {
		code, ans, _ := getStatus(t, st, id)
		last = ans
		return code == http.StatusOK && ans.Submission != nil && ans.Submission.Done()
	})
	return last.Submission
}

func TestSubmissionStatusThroughTheSteps(t *testing.T) {
	st := teststack.Start(t, map[string]string{"FORMQ_ADMIN_TOKEN": e2eAdminToken})
	id := submitForm(t, st, "Ada Lovelace", avatarPNG(t, 300, 150))

	code, ans, raw := getStatus(t, st, id)
	if code != http.StatusOK || !ans.OK || ans.Submission.ID != id || ans.Submission.Action != "create-user" {
		t.Fatalf("status right after submit: %d %s", code, raw)
	}
	if s := ans.Submission.Status; s != submission.StatusQueued && s != submission.StatusProcessing && s != submission.StatusCompleted {
		t.Errorf("status %q right after submit", s)
	}

	s := waitDone(t, st, id)
	if s.Status != submission.StatusCompleted || s.Event == "" || s.Error != "" || s.StatusURL != st.APIURL+"/submissions/"+id {
		t.Fatalf("final status %+v", s)
	}
	if len(s.Files) != 1 || s.Files[0].Field != "avatar" || s.Files[0].Key != "uploads/create-user/"+id+"/avatar/0" {
		t.Errorf("files %+v", s.Files)
	}
	if len(s.Steps) != 2 || s.Steps[0].Type != "thumbnail" || s.Steps[1].Type != "email" {
		t.Fatalf("steps %+v", s.Steps)
	}
	for _, step := range s.Steps {
		if step.State != submission.StepCompleted || step.Attempts != 1 || step.LastError != "" {
			t.Errorf("step %+v", step)
		}
	}
	for _, size := range []int{64, 256} {
		key := builtin.ThumbnailKey(s.Files[0].Key, size, "png")
		b, err := st.Store.Get(context.Background(), key)
		if err != nil {
			t.Fatalf("thumbnail %s: %v", key, err)
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != size || cfg.Height != size/2 {
			t.Errorf("thumbnail %s is %dx%d (%v), want %dx%d", key, cfg.Width, cfg.Height, err, size, size/2)
		}
	}

	for _, bad := range []string{"01UNKNOWN", "not%20an%20id"} {
		code, _, raw := getStatus(t, st, bad)
		var e web.ErrorBody
		_ = json.Unmarshal(raw, &e)
		if code != http.StatusNotFound || e.Error.Code != "submission_not_found" {
			t.Errorf("GET /submissions/%s: %d %s", bad, code, raw)
		}
	}
}

// sseEvent is one message of a server-sent-event stream.
type sseEvent struct{ ID, Data string }

// sseStream reads messages from a response body into a channel that is
// closed when the stream ends; comment lines count on the side.
func sseStream(body io.Reader) <-chan sseEvent {
	out := make(chan sseEvent, 100)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Data != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "data: "):
				ev.Data += line[6:]
			}
		}
	}()
	return out
}

func openSSE(t *testing.T, url, lastID string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The first bytes (retry:) are sent once the subscription is in place.
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	stop := func() { cancel(); resp.Body.Close() }
	t.Cleanup(stop)
	return sseStream(r), stop
}

func receive(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return sseEvent{}
}

func TestSubmissionEventsStreamUntilDone(t *testing.T) {
	st := teststack.Start(t, map[string]string{"FORMQ_ADMIN_TOKEN": e2eAdminToken})
	id := submitForm(t, st, "Grace Hopper", avatarPNG(t, 80, 80))
	ch, _ := openSSE(t, st.APIURL+"/submissions/"+id+"/events", "")
	var last submission.Status
	n := 0
	for ev := range ch {
		n++
		if err := json.Unmarshal([]byte(ev.Data), &last); err != nil {
			t.Fatalf("message %q: %v", ev.Data, err)
		}
	}
	// The server ends the stream once the submission is done.
	if n == 0 || last.Status != submission.StatusCompleted || last.ID != id || len(last.Steps) != 2 {
		t.Errorf("%d messages, last %+v", n, last)
	}
}

func TestEventsFilterAndResumeWithLastEventID(t *testing.T) {
	st := teststack.Start(t, map[string]string{"FORMQ_ADMIN_TOKEN": e2eAdminToken})
	users, stopUsers := openSSE(t, st.APIURL+"/events?tag=users", "")
	others, _ := openSSE(t, st.APIURL+"/events?tag=orders&path=/orders", "")

	first := submitForm(t, st, "Ada Lovelace", nil)
	ev := receive(t, users)
	var body map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &body); err != nil {
		t.Fatal(err)
	}
	if body["submission"] != first || body["id"] != ev.ID || ev.ID == "" || body["type"] != "revalidate" {
		t.Fatalf("event id %q data %s", ev.ID, ev.Data)
	}
	if tags, _ := body["tags"].([]any); len(tags) != 2 || tags[1] != "user:"+first {
		t.Errorf("tags %v", body["tags"])
	}

	// Disconnect; two submissions complete meanwhile.
	stopUsers()
	missed := []string{submitForm(t, st, "Grace Hopper", nil), submitForm(t, st, "Alan Turing", nil)}
	for _, id := range missed {
		waitDone(t, st, id)
	}
	resumed, _ := openSSE(t, st.APIURL+"/events?tag=users", ev.ID)
	var got []string
	for range missed {
		e := receive(t, resumed)
		var b map[string]any
		_ = json.Unmarshal([]byte(e.Data), &b)
		got = append(got, b["submission"].(string))
	}
	// Two workers' goroutines may finish the two in either order; the
	// replay follows the stream, so compare as sets.
	slices.Sort(got)
	slices.Sort(missed)
	if !slices.Equal(got, missed) {
		t.Errorf("after reconnect got %v, want exactly the missed %v", got, missed)
	}
	// Then live again, nothing repeated.
	live := submitForm(t, st, "Barbara Liskov", nil)
	e := receive(t, resumed)
	if !strings.Contains(e.Data, live) {
		t.Errorf("next event %s, want the live one of %s", e.Data, live)
	}
	select {
	case e := <-others:
		t.Errorf("a subscriber filtering on orders got %s", e.Data)
	default:
	}

	resp, err := http.DefaultClient.Do(func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, st.APIURL+"/events", nil)
		r.Header.Set("Last-Event-ID", "yesterday")
		r.Header.Set("Accept", "application/json")
		return r
	}())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad Last-Event-ID: %d", resp.StatusCode)
	}
}

func TestPixelFloodEndsFailedAndWorkerStaysUp(t *testing.T) {
	st := teststack.Start(t, map[string]string{"FORMQ_ADMIN_TOKEN": e2eAdminToken})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	flood, err := os.ReadFile("testdata/pixel-flood.png") // 65535x65535 claimed
	if err != nil {
		t.Fatal(err)
	}
	id := submitForm(t, st, "Mallory", flood)
	s := waitDone(t, st, id)
	runtime.ReadMemStats(&after)
	if s.Status != submission.StatusFailed || !strings.Contains(s.Error, "step 1 (thumbnail) failed") || !strings.Contains(s.Error, "65535x65535") {
		t.Fatalf("status %q error %q", s.Status, s.Error)
	}
	if s.Steps[0].State != submission.StepFailed || s.Steps[0].Attempts != 1 || s.Steps[1].State != submission.StepPending {
		t.Errorf("steps %+v: the flood fails at once, and the email never runs", s.Steps)
	}
	// API and worker run in this process: everything they allocated
	// while handling it stays far below the 16 GiB the flood asks for.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
		t.Errorf("allocated %d MiB handling a pixel flood", alloc>>20)
	}
	t.Logf("allocated %d KiB in API and worker while handling the flood", (after.TotalAlloc-before.TotalAlloc)>>10)
	teststack.WaitOK(t, st.WorkerURL+"/healthz")
	// And it keeps working.
	if s := waitDone(t, st, submitForm(t, st, "Ada Lovelace", avatarPNG(t, 40, 40))); s.Status != submission.StatusCompleted {
		t.Errorf("next submission: %+v", s)
	}
}

func TestQueueDashboardBehindAdminToken(t *testing.T) {
	st := teststack.Start(t, map[string]string{"FORMQ_ADMIN_TOKEN": "test-admin-token-123"})
	cases := []struct {
		name   string
		auth   func(*http.Request)
		status int
	}{
		{"none", func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusForbidden},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer test-admin-token-123") }, http.StatusOK},
		{"basic (browsers)", func(r *http.Request) { r.SetBasicAuth("admin", "test-admin-token-123") }, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/admin/queues/", "/admin/queues/api/queues"} {
				req, _ := http.NewRequest(http.MethodGet, st.APIURL+path, nil)
				req.Header.Set("Accept", "application/json")
				tc.auth(req)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("%s: %d %s", path, resp.StatusCode, raw)
				}
				if tc.status == http.StatusUnauthorized && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("%s: no Basic challenge for browsers", path)
				}
				if tc.status == http.StatusOK && path == "/admin/queues/api/queues" && !strings.Contains(string(raw), `"queues"`) {
					t.Errorf("queues API: %s", raw)
				}
			}
		})
	}
}

// png16 is a valid 16-bit RGBA PNG of w x h black pixels, compressed as a
// stream: a few hundred KB that decode to w*h*8 bytes.
func png16(t *testing.T, w, h int) []byte {
	t.Helper()
	var out bytes.Buffer
	chunk := func(kind string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		out.Write(n[:])
		crc := crc32.NewIEEE()
		crc.Write([]byte(kind))
		crc.Write(data)
		out.WriteString(kind)
		out.Write(data)
		binary.BigEndian.PutUint32(n[:], crc.Sum32())
		out.Write(n[:])
	}
	out.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 16, 6 // 16 bits per channel, RGBA
	chunk("IHDR", ihdr)
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	row := make([]byte, 1+w*8)
	for range h {
		zw.Write(row)
	}
	zw.Close()
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}

// A 16-bit PNG of 6000x6600 is under the pixel cap but decodes to 316 MB:
// it used to raise the worker's memory by that much for one task. It is
// refused from its header, as a permanent step failure.
func TestAttackThumbnailDecodeMemory(t *testing.T) {
	st := teststack.Start(t, map[string]string{"FORMQ_ADMIN_TOKEN": e2eAdminToken})
	img := png16(t, 6000, 6600)
	t.Logf("the PNG is %d KB", len(img)>>10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	id := submitForm(t, st, "Mallory", img)
	s := waitDone(t, st, id)
	runtime.ReadMemStats(&after)
	if s.Status != submission.StatusFailed || !strings.Contains(s.Error, "step 1 (thumbnail) failed") || !strings.Contains(s.Error, "over the limit of 64 MiB") {
		t.Fatalf("status %q error %q", s.Status, s.Error)
	}
	if s.Steps[0].State != submission.StepFailed || s.Steps[0].Attempts != 1 {
		t.Errorf("steps %+v: the image fails at once, for good", s.Steps)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 128<<20 {
		t.Errorf("allocated %d MiB handling a 16-bit PNG that decodes to 316 MB", alloc>>20)
	}
}
