package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/email"
	"github.com/formq/formq/submission"
	"github.com/hibiken/asynq"
)

// smtpServer is an in-process SMTP server standing in for a mail relay:
// enough of RFC 5321 and its STARTTLS (RFC 3207) and AUTH (RFC 4954;
// PLAIN, LOGIN, CRAM-MD5) extensions for a real client to deliver to it,
// recording what it receives.
type smtpServer struct {
	l    net.Listener
	addr string
	cert *x509.Certificate // of tlsConfig

	// Set before the first connection.
	rejectRcpt bool
	starttls   bool        // offer STARTTLS
	implicit   bool        // TLS from the first byte (smtps)
	tlsConfig  *tls.Config // for starttls and implicit
	authMechs  string      // offered AUTH mechanisms, e.g. "PLAIN LOGIN"
	user, pass string
	hang       chan struct{} // set: at MAIL, signal and never answer

	closed chan struct{} // a connection ended

	mu       sync.Mutex
	msgs     []smtpMessage
	authLogs []string // "MECH ok|bad tls=true|false"
}

type smtpMessage struct {
	from string
	to   []string
	data string
	tls  bool   // the session was encrypted when MAIL came
	auth string // the mechanism the session authenticated with
}

// startSMTP starts a server on a free loopback port; configure it in
// setup, which runs before it accepts connections.
func startSMTP(t *testing.T, setup ...func(*smtpServer)) *smtpServer {
	t.Helper()
	s := &smtpServer{closed: make(chan struct{}, 100)}
	s.tlsConfig, s.cert = testTLS(t)
	for _, f := range setup {
		f(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.l, s.addr = l, l.Addr().String()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return s
}

// testTLS is a self-signed certificate for 127.0.0.1.
func testTLS(t *testing.T) (*tls.Config, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "formq test relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, cert
}

// mailer is a Mailer for raw that trusts the server's certificate.
func (s *smtpServer) mailer(t *testing.T, raw string) *Mailer {
	t.Helper()
	m, err := New(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.roots = x509.NewCertPool()
	m.roots.AddCert(s.cert)
	return m
}

func (s *smtpServer) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.closed <- struct{}{}
	}()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	encrypted := false
	if s.implicit {
		c = tls.Server(c, s.tlsConfig)
		encrypted = true
	}
	r := bufio.NewReader(c)
	reply := func(line string) { io.WriteString(c, line+"\r\n") }
	readLine := func() (string, bool) {
		line, err := r.ReadString('\n')
		return strings.TrimRight(line, "\r\n"), err == nil
	}
	reply("220 test ESMTP")
	var m smtpMessage
	auth := ""
	for {
		line, ok := readLine()
		if !ok {
			return
		}
		cmd := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			ext := []string{"test", "8BITMIME"}
			if s.starttls && !encrypted {
				ext = append(ext, "STARTTLS")
			}
			if s.authMechs != "" {
				ext = append(ext, "AUTH "+s.authMechs)
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				reply("250" + sep + e)
			}
		case cmd == "STARTTLS" && s.starttls && !encrypted:
			reply("220 go ahead")
			tc := tls.Server(c, s.tlsConfig)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, r, encrypted = tc, bufio.NewReader(tc), true
			auth = "" // RFC 3207: the session starts over
		case strings.HasPrefix(cmd, "AUTH "):
			mech, ok := s.authenticate(strings.Fields(line)[1:], reply, readLine)
			s.mu.Lock()
			s.authLogs = append(s.authLogs, fmt.Sprintf("%s %s tls=%v", mech, map[bool]string{true: "ok", false: "bad"}[ok], encrypted))
			s.mu.Unlock()
			if !ok {
				reply("535 5.7.8 authentication credentials invalid")
				continue
			}
			auth = mech
			reply("235 2.7.0 authenticated")
		case strings.HasPrefix(cmd, "MAIL FROM:") && s.hang != nil:
			_ = c.SetDeadline(time.Now().Add(time.Minute)) // past the test's patience
			s.hang <- struct{}{}
			_, _ = io.Copy(io.Discard, c) // no reply, until the client hangs up
			return
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			if s.authMechs != "" && auth == "" {
				reply("530 5.7.0 authentication required")
				continue
			}
			from, _, _ := strings.Cut(line[10:], " ") // drop parameters like BODY=8BITMIME
			m = smtpMessage{from: strings.Trim(from, "<>"), tls: encrypted, auth: auth}
			reply("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			if s.rejectRcpt {
				reply("550 no such user")
				continue
			}
			to, _, _ := strings.Cut(line[8:], " ")
			m.to = append(m.to, strings.Trim(to, "<>"))
			reply("250 ok")
		case cmd == "DATA":
			reply("354 go ahead")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			m.data = data.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			reply("250 queued")
		case cmd == "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}

// authenticate runs one AUTH exchange and checks the credentials.
func (s *smtpServer) authenticate(args []string, reply func(string), readLine func() (string, bool)) (string, bool) {
	mech := strings.ToUpper(args[0])
	if !strings.Contains(" "+s.authMechs+" ", " "+mech+" ") {
		return mech, false
	}
	ask := func(challenge string) (string, bool) {
		reply("334 " + base64.StdEncoding.EncodeToString([]byte(challenge)))
		line, ok := readLine()
		b, err := base64.StdEncoding.DecodeString(line)
		return string(b), ok && err == nil
	}
	switch mech {
	case "PLAIN":
		var resp string
		ok := true
		if len(args) > 1 {
			b, err := base64.StdEncoding.DecodeString(args[1])
			resp, ok = string(b), err == nil
		} else {
			resp, ok = ask("")
		}
		parts := strings.Split(resp, "\x00")
		return mech, ok && len(parts) == 3 && parts[1] == s.user && parts[2] == s.pass
	case "LOGIN":
		user, ok1 := ask("Username:")
		pass, ok2 := ask("Password:")
		return mech, ok1 && ok2 && user == s.user && pass == s.pass
	case "CRAM-MD5":
		challenge := fmt.Sprintf("<%d.formq@127.0.0.1>", time.Now().UnixNano())
		resp, ok := ask(challenge)
		mac := hmac.New(md5.New, []byte(s.pass))
		mac.Write([]byte(challenge))
		return mech, ok && resp == s.user+" "+hex.EncodeToString(mac.Sum(nil))
	}
	return mech, false
}

// waitClosed fails the test unless the client has ended its connection:
// a client that leaves it open leaks a socket per failed delivery.
func (s *smtpServer) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Error("the client left its connection open")
	}
}

func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

func (s *smtpServer) auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.authLogs...)
}

// sendTest runs an email step with mailer to one recipient.
func sendTest(mailer *Mailer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return emailStep(mailer).Run(ctx, step.Run{Submission: testSubmission("01MAIL"),
		Config: map[string]any{"to": "team@example.com", "subject": "hi"}})
}

func TestEmailStepSendsToLocalRelay(t *testing.T) {
	srv := startSMTP(t)
	st := emailStep(srv.mailer(t, "smtp://"+srv.addr+"?from=forms@example.com"))
	cfg := map[string]any{"to": []any{"team@example.com", "Boss <boss@example.com>"}, "subject": "New user {name}\r\nBcc: evil@example.com"}
	if err := st.Check(cfg); err != nil {
		t.Fatal(err)
	}
	sub := testSubmission("01MAIL")
	sub.Values["name"] = "Zoë"
	run := step.Run{Submission: sub, Config: cfg, Index: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.Run(ctx, run); err != nil {
		t.Fatal(err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.from != "forms@example.com" || strings.Join(m.to, ",") != "team@example.com,boss@example.com" {
		t.Errorf("envelope from %q to %q", m.from, m.to)
	}
	if m.tls || m.auth != "" {
		t.Errorf("tls %v auth %q; want neither from a relay that offers neither", m.tls, m.auth)
	}
	parsed, err := mail.ReadMessage(strings.NewReader(m.data))
	if err != nil {
		t.Fatalf("message: %v\n%s", err, m.data)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
	if subject != "New user Zoë Bcc: evil@example.com" {
		t.Errorf("subject %q: want the template filled, on one line", subject)
	}
	if parsed.Header.Get("Bcc") != "" {
		t.Error("a header was injected through the subject")
	}
	if id := parsed.Header.Get("Message-ID"); id != "<01MAIL_2@formq>" {
		t.Errorf("Message-ID %q; want one stable across retries", id)
	}
	if to := parsed.Header.Get("To"); !strings.Contains(to, "<team@example.com>") || !strings.Contains(to, "<boss@example.com>") {
		t.Errorf("To %q", to)
	}
	if _, err := parsed.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if strings.Count(m.data, "\n") != strings.Count(m.data, "\r\n") {
		t.Errorf("message has bare line feeds; SMTP wants CRLF:\n%q", m.data)
	}
	body, _ := io.ReadAll(parsed.Body)
	if !strings.Contains(string(body), "name: Zo=C3=AB") || !strings.Contains(string(body), "01MAIL") {
		t.Errorf("body %q", body)
	}
}

func TestEmailFromWithDisplayNameAtLocalRelay(t *testing.T) {
	srv := startSMTP(t)
	err := emailStep(srv.mailer(t, "smtp://"+srv.addr)).Run(context.Background(), step.Run{Submission: testSubmission("01MAIL"),
		Config: map[string]any{"to": "team@example.com", "subject": "hi", "from": "Forms <forms@example.com>"}})
	if err != nil {
		t.Fatal(err)
	}
	m := srv.messages()[0]
	parsed, err := mail.ReadMessage(strings.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	if m.from != "forms@example.com" || parsed.Header.Get("From") != `"Forms" <forms@example.com>` {
		t.Errorf("envelope from %q, From %q; want the bare address in the envelope, the name in the header", m.from, parsed.Header.Get("From"))
	}
}

func TestEmailSTARTTLSAtLocalRelay(t *testing.T) {
	tests := []struct {
		name, query string
		offer       bool
		wantSent    bool
	}{
		{"offered, upgraded", "", true, true},
		{"offered, required", "?starttls=required", true, true},
		{"not offered, sent in clear", "", false, true},
		{"not offered, required", "?starttls=required", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, func(s *smtpServer) { s.starttls = tt.offer })
			err := sendTest(srv.mailer(t, "smtp://"+srv.addr+tt.query))
			msgs := srv.messages()
			if !tt.wantSent {
				if err == nil || errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "STARTTLS") || len(msgs) != 0 {
					t.Fatalf("err = %v, %d messages; want a retried STARTTLS failure and nothing sent", err, len(msgs))
				}
				srv.waitClosed(t)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 || msgs[0].tls != tt.offer {
				t.Fatalf("%d messages, %+v; want one, encrypted: %v", len(msgs), msgs, tt.offer)
			}
		})
	}
}

func TestEmailAuthAtLocalRelay(t *testing.T) {
	tests := []struct {
		name      string
		scheme    string
		starttls  bool
		mechs     string
		pass      string // the mailer's; the relay's is "secret"
		wantAuth  string // "" with wantErr
		wantErr   string
		permanent bool
	}{
		{"PLAIN over STARTTLS", "smtp", true, "PLAIN LOGIN", "secret", "PLAIN", "", false},
		{"LOGIN over STARTTLS", "smtp", true, "LOGIN", "secret", "LOGIN", "", false},
		{"PLAIN over smtps", "smtps", false, "PLAIN", "secret", "PLAIN", "", false},
		{"CRAM-MD5 preferred", "smtp", true, "PLAIN LOGIN CRAM-MD5", "secret", "CRAM-MD5", "", false},
		{"CRAM-MD5 without TLS", "smtp", false, "PLAIN LOGIN CRAM-MD5", "secret", "CRAM-MD5", "", false},
		{"no password in clear", "smtp", false, "PLAIN LOGIN", "secret", "", "only over TLS", false},
		{"wrong password", "smtp", true, "PLAIN", "wrong", "", "535", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, func(s *smtpServer) {
				s.starttls, s.implicit = tt.starttls, tt.scheme == "smtps"
				s.authMechs, s.user, s.pass = tt.mechs, "mailer", "secret"
			})
			err := sendTest(srv.mailer(t, tt.scheme+"://mailer:"+tt.pass+"@"+srv.addr))
			msgs := srv.messages()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, asynq.SkipRetry) != tt.permanent || len(msgs) != 0 {
					t.Fatalf("err = %v, %d messages; want %q (permanent: %v), nothing sent", err, len(msgs), tt.wantErr, tt.permanent)
				}
				srv.waitClosed(t)
			} else if err != nil {
				t.Fatal(err)
			} else if len(msgs) != 1 || msgs[0].auth != tt.wantAuth {
				t.Fatalf("messages %+v; want one sent after AUTH %s", msgs, tt.wantAuth)
			}
			for _, a := range srv.auths() {
				if (strings.HasPrefix(a, "PLAIN") || strings.HasPrefix(a, "LOGIN")) && strings.HasSuffix(a, "tls=false") {
					t.Errorf("AUTH %s: a password went over an unencrypted connection", a)
				}
			}
		})
	}
}

func TestEmailCertificateNotTrustedAtLocalRelay(t *testing.T) {
	srv := startSMTP(t, func(s *smtpServer) { s.starttls = true })
	mailer, err := New("smtp://" + srv.addr) // system roots: the test certificate is not among them
	if err != nil {
		t.Fatal(err)
	}
	err = sendTest(mailer)
	if err == nil || !strings.Contains(err.Error(), "certificate") || len(srv.messages()) != 0 {
		t.Errorf("err = %v; want a certificate failure and nothing sent", err)
	}
}

func TestEmailRefusedRecipientFailsForGoodAtLocalRelay(t *testing.T) {
	srv := startSMTP(t, func(s *smtpServer) { s.rejectRcpt = true })
	err := sendTest(srv.mailer(t, "smtp://"+srv.addr))
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "550") {
		t.Errorf("err = %v; want a permanent failure with the 550 reply", err)
	}
}

func TestEmailUnreachableServerIsRetried(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	mailer, _ := New("smtp://" + addr)
	err := sendTest(mailer)
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("err = %v; want a retried failure", err)
	}
}

func TestEmailCancelEndsDeliveryToStalledLocalServer(t *testing.T) {
	srv := startSMTP(t, func(s *smtpServer) { s.hang = make(chan struct{}, 1) })
	mailer := srv.mailer(t, "smtp://"+srv.addr)
	mailer.timeout = time.Hour // only ctx can end it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- emailStep(mailer).Run(ctx, step.Run{Submission: testSubmission("01MAIL"),
			Config: map[string]any{"to": "a@example.com", "subject": "hi"}})
	}()
	<-srv.hang // MAIL sent, no reply coming
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, asynq.SkipRetry) {
			t.Errorf("err = %v; want a retried failure naming the cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("delivery still waiting for the reply to MAIL 10 s after its context was cancelled")
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		raw     string
		wantErr string
		check   func(*Mailer) bool
	}{
		{"smtp://u:p@mail.example.com?from=forms@example.com", "", func(m *Mailer) bool {
			return m.port == 587 && !m.implicit && m.user == "u" && m.pass == "p" && m.from == "forms@example.com" && m.starttls.String() == "TLSOpportunistic"
		}},
		{"smtps://mail.example.com", "", func(m *Mailer) bool { return m.port == 465 && m.implicit && m.from == DefaultFrom }},
		{"smtp://mail.example.com:2525?starttls=required", "", func(m *Mailer) bool { return m.port == 2525 && m.starttls.String() == "TLSMandatory" }},
		{"smtp://mail.example.com?starttls=opportunistic", "", func(m *Mailer) bool { return m.starttls.String() == "TLSOpportunistic" }},
		{"smtp://mail.example.com?starttls=yes", "want opportunistic or required", nil},
		{"smtps://mail.example.com?starttls=required", "not with smtps", nil},
		{"smtp://mail.example.com?form=a@example.com", `unknown option "form"`, nil},
		{"smtp://mail.example.com?from=not-an-address", "from", nil},
		{"http://mail.example.com", "want a URL like", nil},
		{"smtp://:25", "want a URL like", nil},
	}
	for _, tt := range tests {
		m, err := New(tt.raw)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("New(%q) err = %v, want %q", tt.raw, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Errorf("New(%q): %v", tt.raw, err)
		case tt.check != nil && !tt.check(m):
			t.Errorf("New(%q) = %+v", tt.raw, m)
		}
	}
}

func TestLogMailerWritesTheMessage(t *testing.T) {
	var logs bytes.Buffer
	mailer := NewLog(slog.New(slog.NewJSONHandler(&logs, nil)))
	err := emailStep(mailer).Run(context.Background(), step.Run{Submission: testSubmission("01MAIL"),
		Config: map[string]any{"to": "team@example.com", "subject": "New {name}"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FORMQ_SMTP_URL is unset", "team@example.com", "Subject: New Ada", "Message-ID: <01MAIL_0@formq>"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// emailStep is the built-in email step sending with mailer.
func emailStep(mailer *Mailer) step.Type {
	return email.Step(mailer, nil)
}

func testSubmission(id string) *submission.Submission {
	return &submission.Submission{ID: id, Action: "hook", Values: map[string]any{"name": "Ada"}, Files: []submission.File{}}
}

// TestAutoresponderLimitPerRecipientAtLocalRelay: an email step to the
// submitter with limit 2/1h, counted in a real Redis, sends two messages
// to one address and skips the third (not a failure: no retry), while
// another address still gets its message and a retry of a counted
// submission is not counted twice.
func TestAutoresponderLimitPerRecipientAtLocalRelay(t *testing.T) {
	srv := startSMTP(t)
	rdb := testenv.StartRedis(t).Client(t)
	st := email.Step(srv.mailer(t, "smtp://"+srv.addr+"?from=forms@example.com"), email.NewRedisRecipients(rdb))
	cfg := map[string]any{"to": "{email}", "subject": "Thanks", "limit": "2/1h"}
	if err := st.Check(cfg); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(map[string]any{"to": "team@example.com", "subject": "x", "limit": "2/1h"}); err == nil {
		t.Error("a limit on a fixed recipient was accepted")
	}
	if err := st.Check(map[string]any{"to": "{email}", "subject": "x", "limit": "many"}); err == nil {
		t.Error("limit: many was accepted")
	}
	run := func(id, addr string) error {
		sub := testSubmission(id)
		sub.Values["email"] = addr
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return st.Run(ctx, step.Run{Submission: sub, Config: cfg})
	}
	for _, id := range []string{"01A", "01B"} {
		if err := run(id, "Ada@Example.com"); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if err := run("01A", "ada@example.com"); err != nil {
		t.Fatalf("a retry of a counted submission: %v", err)
	}
	err := run("01C", "ada@example.com")
	if err == nil || errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "limit 2/1h") {
		t.Fatalf("the third submission to one address: %v, want a skip", err)
	}
	if err := run("01D", "grace@example.com"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	var to []string
	for _, m := range srv.messages() {
		to = append(to, strings.Join(m.to, ","))
	}
	if strings.Join(to, " ") != "Ada@Example.com Ada@Example.com ada@example.com grace@example.com" {
		t.Errorf("messages went to %q", to)
	}
	if keys := rdb.Keys(context.Background(), "formq:ar:*").Val(); len(keys) != 2 || strings.Contains(keys[0], "example") {
		t.Errorf("counter keys: %v", keys)
	}
}
