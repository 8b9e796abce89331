package jobs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// smtpServer is a minimal in-process SMTP server: enough of RFC 5321 for
// net/smtp to deliver to it, recording what it receives.
type smtpServer struct {
	l          net.Listener
	rejectRcpt bool

	mu   sync.Mutex
	msgs []smtpMessage
}

type smtpMessage struct {
	from string
	to   []string
	data string
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { l.Close() })
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	reply := func(line string) { io.WriteString(c, line+"\r\n") }
	reply("220 test ESMTP")
	var m smtpMessage
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			reply("250-test")
			reply("250 8BITMIME")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			from, _, _ := strings.Cut(strings.TrimSpace(line)[10:], " ") // drop parameters like BODY=8BITMIME
			m = smtpMessage{from: strings.Trim(from, "<>")}
			reply("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			if s.rejectRcpt {
				reply("550 no such user")
				continue
			}
			m.to = append(m.to, strings.Trim(strings.TrimSpace(line)[8:], "<>"))
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

func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

func TestEmailStepSendsOverSMTP(t *testing.T) {
	srv := startSMTP(t)
	mailer, err := NewMailer("smtp://" + srv.l.Addr().String() + "?from=forms@example.com")
	if err != nil {
		t.Fatal(err)
	}
	step := emailStep(mailer)
	cfg := map[string]any{"to": []any{"team@example.com", "Boss <boss@example.com>"}, "subject": "New user {name}\r\nBcc: evil@example.com"}
	if err := step.Check(cfg); err != nil {
		t.Fatal(err)
	}
	sub := testSubmission("01MAIL")
	sub.Values["name"] = "Zoë"
	run := StepRun{Submission: sub, Config: cfg, Index: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := step.Run(ctx, run); err != nil {
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
	body, _ := io.ReadAll(parsed.Body)
	if !strings.Contains(string(body), "name: Zo=C3=AB") || !strings.Contains(string(body), "01MAIL") {
		t.Errorf("body %q", body)
	}
}

func TestEmailRefusedRecipientFailsForGood(t *testing.T) {
	srv := startSMTP(t)
	srv.rejectRcpt = true
	mailer, err := NewMailer("smtp://" + srv.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	err = emailStep(mailer).Run(context.Background(), StepRun{Submission: testSubmission("01MAIL"),
		Config: map[string]any{"to": "nobody@example.com", "subject": "hi"}})
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "550") {
		t.Errorf("err = %v; want a permanent failure with the 550 reply", err)
	}
}

func TestEmailUnreachableServerIsRetried(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	mailer, _ := NewMailer("smtp://" + addr)
	err := emailStep(mailer).Run(context.Background(), StepRun{Submission: testSubmission("01MAIL"),
		Config: map[string]any{"to": "a@example.com", "subject": "hi"}})
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("err = %v; want a retried failure", err)
	}
}
