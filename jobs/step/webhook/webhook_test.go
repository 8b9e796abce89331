package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formq/formq/internal/webhooktest"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// testSecret signs the test webhooks; receiver checks them.
const testSecret = webhooktest.Secret

// receiver records webhook deliveries and checks their signatures.
type receiver = webhooktest.Receiver

func testSubmission(id string) *submission.Submission {
	return &submission.Submission{ID: id, Action: "hook", Values: map[string]any{"name": "Ada"}, Files: []submission.File{}}
}

func runWebhook(t *testing.T, client *Client, url string, sub *submission.Submission, attempt int) error {
	t.Helper()
	env := map[string]string{"HOOK_SECRET": testSecret}
	st := Step(client, func(k string) string { return env[k] }, nil)
	cfg := map[string]any{"url": url, "secret_env": "HOOK_SECRET"}
	if err := st.Check(cfg); err != nil {
		t.Fatalf("check: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return st.Run(ctx, step.Run{Submission: sub, Config: cfg, Index: 1, Attempt: attempt})
}

func TestWebhookRefusesNonPublicAddresses(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc) // on 127.0.0.1
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	// A listener on [::1] so that a refused dial is the guard, not a
	// closed port.
	var v6hits atomic.Int32
	v6URL := ""
	if l, err := net.Listen("tcp", "[::1]:0"); err == nil {
		v6 := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { v6hits.Add(1) })}
		go v6.Serve(l)
		defer v6.Close()
		v6URL = "http://" + l.Addr().String() + "/hook"
	}

	// The redirector must itself be reachable: this client allows exactly
	// its address (127.0.0.1) and nothing else private.
	var hits127002 atomic.Int32
	target, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.2: %v", err)
	}
	tsrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits127002.Add(1) })}
	go tsrv.Serve(target)
	defer tsrv.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	onlyRedirector := newClient(func(a netip.Addr) bool {
		return a == netip.MustParseAddr("127.0.0.1") || publicAddr(a)
	})

	strict := NewClient(false)
	cases := []struct {
		name   string
		client *Client
		url    string
		want   string
	}{
		{"loopback", strict, srv.URL + "/hook", "127.0.0.1 is not a public address"},
		{"localhost name", strict, "http://localhost:" + port + "/hook", "is not a public address"},
		{"private 10/8", strict, "http://10.0.0.1/hook", "10.0.0.1 is not a public address"},
		{"cloud metadata", strict, "http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public address"},
		{"IPv4-mapped loopback", strict, "http://[::ffff:127.0.0.1]:" + port + "/hook", "is not a public address"},
		{"redirect to metadata", onlyRedirector, redirector.URL + "/?to=http://169.254.169.254/latest/meta-data/", "redirects are not followed"},
		{"redirect to loopback", onlyRedirector, redirector.URL + "/?to=http://" + target.Addr().String() + "/", "redirects are not followed"},
	}
	if v6URL != "" {
		cases = append(cases, struct {
			name   string
			client *Client
			url    string
			want   string
		}{"IPv6 loopback", strict, v6URL, "::1 is not a public address"})
	} else {
		t.Log("no IPv6 loopback here: [::1] case skipped")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := runWebhook(t, tc.client, tc.url, testSubmission("01SSRF"), 1)
			if err == nil {
				t.Fatal("delivered; want refused")
			}
			if !errors.Is(err, asynq.SkipRetry) {
				t.Errorf("error %v is retried; a refused address should fail for good", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	if n := len(rc.Seen()); n != 0 {
		t.Errorf("loopback receiver got %d requests", n)
	}
	if v6hits.Load() != 0 || hits127002.Load() != 0 {
		t.Errorf("redirect or IPv6 targets were reached: %d, %d", hits127002.Load(), v6hits.Load())
	}

	// The same receiver is reachable when private addresses are allowed,
	// so the refusals above are the guard's doing.
	if err := runWebhook(t, NewClient(true), srv.URL+"/hook", testSubmission("01SSRF"), 1); err != nil {
		t.Fatalf("with private addresses allowed: %v", err)
	}
	if n := len(rc.Seen()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true,
		"127.0.0.1": false, "127.8.9.10": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.100.100.200": false, "0.0.0.0": false, "::1": false, "::": false,
		"fe80::1": false, "fd00:ec2::254": false, "::ffff:10.0.0.1": false, "64:ff9b::a00:1": false, "224.0.0.1": false,
	} {
		if got := publicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestWebhookSignedWithStableIDAcrossRetries(t *testing.T) {
	rc := &receiver{}
	rc.Status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	client := NewClient(true)
	sub := testSubmission("01STABLE")

	err := runWebhook(t, client, srv.URL, sub, 1)
	if err == nil || errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "answered 503") {
		t.Fatalf("first attempt: %v; want a retried failure naming 503", err)
	}
	rc.Status.Store(0)
	if err := runWebhook(t, client, srv.URL, sub, 2); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	ids := rc.Seen()
	if len(ids) != 2 || ids[0] != ids[1] || ids[0] != "msg_01STABLE_1" {
		t.Errorf("webhook-ids %q; want the same stable id twice", ids)
	}
	if rc.BadSignatures() != 0 {
		t.Errorf("%d deliveries with a bad signature", rc.BadSignatures())
	}
}

func TestWebhookFailures(t *testing.T) {
	cases := []struct {
		name      string
		handler   http.HandlerFunc
		permanent bool
		want      string
	}{
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }, true, "answered 302"},
		{"gone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }, true, "410"},
		{"server error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }, false, "answered 500"},
		{"client error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) }, false, "answered 401"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			err := runWebhook(t, NewClient(true), srv.URL, testSubmission("01FAIL"), 1)
			if err == nil || errors.Is(err, asynq.SkipRetry) != tc.permanent || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want permanent=%v mentioning %q", err, tc.permanent, tc.want)
			}
		})
	}
}

func TestWebhookTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	st := Step(NewClient(true), func(string) string { return testSecret }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := st.Run(ctx, step.Run{Submission: testSubmission("01SLOW"), Config: map[string]any{"url": srv.URL, "secret_env": "X"}})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("err = %v; want a retried deadline error", err)
	}
}

func TestWebhookCheck(t *testing.T) {
	env := map[string]string{"GOOD": testSecret, "SHORT": "abc"}
	st := Step(nil, func(k string) string { return env[k] }, nil)
	cases := []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"url": "ftp://x", "secret_env": "GOOD"}, "want an http or https URL"},
		{map[string]any{"url": "https://h.example.com", "secret_env": "bad name"}, "secret_env"},
		{map[string]any{"url": "https://h.example.com", "secret_env": "MISSING"}, "secret_env MISSING"},
		{map[string]any{"url": "https://h.example.com", "secret_env": "SHORT"}, "at least 16"},
		{map[string]any{"url": "https://h.example.com", "secret_env": "GOOD", "extra": 1}, "unknown field"},
		{map[string]any{"url": "https://h.example.com", "secret_env": "GOOD"}, ""},
		{map[string]any{"url": "https://h.example.com", "secret_env": "GOOD", "file_url_ttl": "168h"}, ""},
		{map[string]any{"url": "https://h.example.com", "secret_env": "GOOD", "file_url_ttl": "169h"}, "file_url_ttl \"169h\": want a duration from 1s to 168h"},
		{map[string]any{"url": "https://h.example.com", "secret_env": "GOOD", "file_url_ttl": "500ms"}, "file_url_ttl"},
		{map[string]any{"url": "https://h.example.com", "secret_env": "GOOD", "file_url_ttl": "7d"}, "file_url_ttl"},
	}
	for _, tc := range cases {
		err := st.Check(tc.cfg)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Check(%v) = %v; want %q", tc.cfg, err, tc.want)
		}
	}
}

// Special-purpose addresses that once passed as public: IPv4-compatible
// and IPv4-translated loopback, 6to4, Teredo, site-local and the IPv4
// documentation networks. A webhook to any of them is refused at dial time.
func TestAttackWebhookSSRFSpecialRanges(t *testing.T) {
	strict := NewClient(false)
	for _, addr := range []string{
		"::127.0.0.1", "::ffff:0:7f00:1", "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "fec0::1",
		"192.0.2.10", "198.51.100.10", "203.0.113.10", "2001:db8::1", "192.88.99.1",
	} {
		t.Run(addr, func(t *testing.T) {
			a := netip.MustParseAddr(addr)
			if publicAddr(a) {
				t.Errorf("publicAddr(%s) = true", addr)
			}
			host := addr
			if a.Is6() {
				host = "[" + addr + "]"
			}
			err := runWebhook(t, strict, "http://"+host+":8080/hook", testSubmission("01SSRF"), 1)
			if err == nil || !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "is not a public address") {
				t.Errorf("webhook to %s: %v; want refused for good as not public", addr, err)
			}
		})
	}
	for _, addr := range []string{"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"} {
		if !publicAddr(netip.MustParseAddr(addr)) {
			t.Errorf("publicAddr(%s) = false; want public", addr)
		}
	}
}
