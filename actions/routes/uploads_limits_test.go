package routes_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestUploadRefusalsOverHTTP(t *testing.T) {
	st := startUploads(t)
	html := []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>")
	tests := []struct {
		name       string
		parts      []part
		status     int
		field, msg string // an expected field error, by substring
		values     map[string]any
		kept       int // fields whose files are kept (stored, refused for another reason)
	}{
		{"html labelled image/png is refused", []part{{field: "name", value: "Ada"}, {field: "avatar", filename: "me.png", data: html}},
			422, "avatar", "text/html", nil, 0},
		{"a later invalid field refuses files stored before it",
			[]part{{field: "doc", filename: "a.bin", data: pngOf(6 << 20)}, {field: "avatar", filename: "me.png", data: pngOf(1000)}, {field: "name", value: "A"}},
			422, "name", "at least", map[string]any{"name": "A"}, 2},
		{"a later file too large refuses files stored before it",
			[]part{{field: "name", value: "Ada"}, {field: "doc", filename: "a.bin", data: pngOf(100)}, {field: "doc", filename: "b.bin", data: pngOf(21 << 20)}},
			422, "doc", "too large", map[string]any{"name": "Ada"}, 1},
		{"an over-size file is drained and the fields after it still read",
			[]part{{field: "avatar", filename: "me.png", data: pngOf(1<<20 + 10_000)}, {field: "name", value: "Ada"}},
			422, "avatar", "too large", map[string]any{"name": "Ada"}, 0},
		{"too many files", []part{{field: "name", value: "Ada"}, {field: "avatar", filename: "1.png", data: pngOf(10)}, {field: "avatar", filename: "2.png", data: pngOf(10)}},
			422, "avatar", "Too many", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := form(tt.parts...)
			resp, a := post(t, st.url+"/actions/upload-test", body, ct)
			if resp.StatusCode != tt.status || a.Error.Code != "validation_failed" {
				t.Fatalf("status %d code %q, want %d validation_failed", resp.StatusCode, a.Error.Code, tt.status)
			}
			if msgs := strings.Join(a.Errors[tt.field], " "); !strings.Contains(msgs, tt.msg) {
				t.Errorf("errors %v, want %q under %s", a.Errors, tt.msg, tt.field)
			}
			for k, v := range tt.values {
				if a.Values[k] != v {
					t.Errorf("values %v, want %s=%v", a.Values, k, v)
				}
			}
			if tt.kept != len(a.Kept) {
				t.Errorf("kept %v, want files of %d fields kept", a.Kept, tt.kept)
			}
			st.assertOnlyKept(t, a.Kept)
		})
	}
}

func TestHostileFilenamesAreHarmless(t *testing.T) {
	st := startUploads(t)
	for _, name := range []string{`..\..\evil`, "../../../etc/passwd", "evil\x00.png", "\x00", "a\r\nX-Injected: 1"} {
		body, ct := form(part{field: "name", value: "Ada"}, part{field: "avatar", filename: name, data: pngOf(100)})
		resp, a := post(t, st.url+"/actions/upload-test", body, ct)
		if resp.StatusCode != http.StatusAccepted || len(a.Submission.Files) != 1 {
			t.Fatalf("filename %q: status %d, %+v", name, resp.StatusCode, a)
		}
		f := a.Submission.Files[0]
		if want := "uploads/upload-test/" + a.Submission.ID + "/avatar/0"; f.Key != want {
			t.Errorf("filename %q: key %q, want the server-made %q", name, f.Key, want)
		}
		if strings.ContainsAny(f.Filename, "/\\\x00\r\n") || strings.Contains(f.Filename, "..") {
			t.Errorf("filename %q kept as %q", name, f.Filename)
		}
	}
	keys, _ := st.stored(t)
	for _, k := range keys {
		if !strings.HasPrefix(k, "uploads/upload-test/") || strings.Contains(k, "..") {
			t.Errorf("object outside the server-made layout: %q", k)
		}
	}
}

func TestChunkedBodyOverMaxBodyIs413(t *testing.T) {
	st := startUploads(t)
	const maxBody = 30 << 20
	// Each file is within its 20MB limit; together they pass max_body. The
	// body is chunked: no Content-Length to refuse it up front.
	body, ct := form(part{field: "name", value: "Ada"},
		part{field: "doc", filename: "a.bin", src: zeros(16 << 20)},
		part{field: "doc", filename: "b.bin", src: zeros(16 << 20)},
		part{field: "more", value: strings.Repeat("x", 100)})
	resp, raw := earlyAnswer(t, st.url+"/actions/upload-test", ct, body, -1)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), "payload_too_large") {
		t.Fatalf("status %d, body %s; want 413 payload_too_large", resp.StatusCode, raw)
	}
	if read := st.read.Load(); read > maxBody+64<<10 {
		t.Errorf("the server read %d bytes of a body limited to %d", read, maxBody)
	}
	st.assertEmpty(t)
}

// manyParts streams n empty parts.
type manyParts struct{ n, sent int }

func (m *manyParts) Read(p []byte) (int, error) {
	const one = "--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n"
	if m.sent > m.n {
		return 0, io.EOF
	}
	if m.sent == m.n {
		m.sent++
		return copy(p, "--B--\r\n"), nil
	}
	n := 0
	for n+len(one) <= len(p) && m.sent < m.n {
		n += copy(p[n:], one)
		m.sent++
	}
	return n, nil
}

func TestManyEmptyPartsRefusedEarly(t *testing.T) {
	st := startUploads(t)
	const parts, one = 100_000, len("--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n")
	total := int64(parts*one + len("--B--\r\n"))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, raw := earlyAnswer(t, st.url+"/actions/big-test", "multipart/form-data; boundary=B", &manyParts{n: parts}, total)
	runtime.ReadMemStats(&after)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "bad_request") {
		t.Fatalf("status %d, body %s; want 400 bad_request", resp.StatusCode, raw)
	}
	if read := st.read.Load(); read > total/10 {
		t.Errorf("the server read %d of %d bytes before refusing", read, total)
	}
	// Client and server share this process: what both allocated is bounded
	// too, well under what 100,000 parsed parts would take.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("%d MiB allocated for one refused request", alloc>>20)
	}
}

// earlyAnswer sends a body of size bytes from src on a raw connection
// while reading the answer, so an answer given before the body ended is
// seen even when the server then resets the connection.
func earlyAnswer(t *testing.T, url, ctype string, src io.Reader, size int64) (*http.Response, []byte) {
	t.Helper()
	host, path, _ := strings.Cut(strings.TrimPrefix(url, "http://"), "/")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		if size < 0 { // chunked: no length to refuse up front
			fmt.Fprintf(conn, "POST /%s HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", path, ctype)
			cw := httputil.NewChunkedWriter(conn)
			if _, err := io.Copy(cw, src); err == nil {
				_ = cw.Close()
				_, _ = io.WriteString(conn, "\r\n")
			}
			return
		}
		fmt.Fprintf(conn, "POST /%s HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", path, ctype, size)
		_, _ = io.Copy(conn, src)
	}()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

func TestOverSizeFileFarOverItsLimitClosesInsteadOfDraining(t *testing.T) {
	st := startUploads(t)
	// By hand: the client keeps sending while it reads the answer, as a
	// browser does, so the early answer is seen before the connection goes.
	conn, _ := rawPost(t, st.url, "big-test", 150<<20)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body ended: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(raw), "too large") {
		t.Fatalf("status %d, body %s; want 422 with the doc's size error", resp.StatusCode, raw)
	}
	if !resp.Close {
		t.Errorf("the connection stays open after a body that was not read to its end")
	}
	if read := st.read.Load(); read > 5<<20+16<<20+1<<20 {
		t.Errorf("read %d MiB of a 150 MiB body to refuse a 5MB field", read>>20)
	}
	st.assertEmpty(t)
}

// rawPost starts a request by hand, for clients that stall or vanish.
func rawPost(t *testing.T, url, action string, contentLength int64) (net.Conn, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /actions/%s HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: %d\r\n\r\n", action, contentLength)
	fmt.Fprint(conn, "--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n--B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.bin\"\r\n\r\n")
	return conn, ""
}

func TestClientGoneMidFileLeavesNothing(t *testing.T) {
	chunk := make([]byte, 1<<20)
	t.Run("multipart upload", func(t *testing.T) {
		// Without a Content-Length the file's size is unknown: a
		// multipart upload of parts.
		st := startUploads(t)
		conn, err := net.Dial("tcp", strings.TrimPrefix(st.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "POST /actions/upload-test HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(conn)
		fmt.Fprint(cw, "--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n--B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.bin\"\r\n\r\n")
		for range 12 {
			if _, err := cw.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		// The file is past its first part: a multipart upload is under way.
		waitFor(t, "a multipart upload to start", func() bool { _, n := st.stored(t); return n > 0 })
		conn.Close()
		waitFor(t, "the multipart upload to be aborted", func() bool { keys, n := st.stored(t); return n == 0 && len(keys) == 0 })
	})
	t.Run("streamed at its predicted size", func(t *testing.T) {
		// With a Content-Length, the last part streams with one PUT.
		st := startUploads(t)
		conn, _ := rawPost(t, st.url, "upload-test", 19<<20)
		for range 12 {
			if _, err := conn.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the server to read 12 MiB", func() bool { return st.read.Load() >= 12<<20 })
		conn.Close()
		waitFor(t, "the server to finish the request", func() bool { return st.done.Load() == 1 })
		st.assertEmpty(t)
	})
}

func TestStalledClientIsCutOffButASlowOneIsNot(t *testing.T) {
	st := startUploads(t)
	t.Run("stalled", func(t *testing.T) {
		conn, _ := rawPost(t, st.url, "upload-test", 10<<20)
		if _, err := conn.Write(pngOf(3 << 20)); err != nil {
			t.Fatal(err)
		}
		// Then nothing: the server gives up after its idle timeout.
		_ = conn.SetReadDeadline(time.Now().Add(testIdle + 15*time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to a stalled body: %v", err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
		st.assertEmpty(t)
	})
	t.Run("slow but steady", func(t *testing.T) {
		const chunks, size = 20, 4096
		tail := "\r\n--B--\r\n"
		conn, _ := rawPost(t, st.url, "upload-test", int64(len("--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n--B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.bin\"\r\n\r\n")+chunks*size+len(tail)))
		// 20 x 100ms: twice the idle timeout in all, each gap a tenth of it.
		for range chunks {
			time.Sleep(testIdle / 10)
			if _, err := conn.Write(pngOf(size)); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprint(conn, tail)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("status %d (%s), want 202: reads that make progress keep the body alive", resp.StatusCode, b)
		}
	})
}

// waitFor waits for cond. The bound only turns a hang into a failure: on
// a machine shared with other load, S3 can take many seconds to finish a
// part in flight before the abort runs.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
