package jobs

// Measuring the spam check on a labelled corpus of mail: each message
// becomes a contact form's submission (subject, message, email), the
// rules score it alone, then with the model (jobs.Index.Learn and
// SpamStore in real Redis) trained on one part of the corpus and measured
// on the rest. The full SpamAssassin corpus runs with -tags spamcorpus
// (spamcorpus_full_test.go, `make spam-corpus`); a small fixture of the
// same format runs here, so the harness is tested in every run.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/spam"
	"github.com/formq/formq/submission"
)

// corpusMessage is one labelled message as a form's values.
type corpusMessage struct {
	name   string
	spam   bool
	values map[string]any
}

// readCorpus reads the messages of the named folders under dir (*.txt,
// raw mail), labelled spam when the folder's name starts with "spam".
func readCorpus(t testing.TB, dir string, folders ...string) []corpusMessage {
	t.Helper()
	var out []corpusMessage
	for _, f := range folders {
		files, err := filepath.Glob(filepath.Join(dir, f, "*.txt"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no messages in %s: %v", filepath.Join(dir, f), err)
		}
		sort.Strings(files)
		for _, path := range files {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, corpusMessage{name: f + "/" + filepath.Base(path), spam: strings.HasPrefix(f, "spam"), values: formValues(raw)})
		}
	}
	return out
}

// formValues makes a message what a contact form would post: its
// subject, its text (the text parts, HTML with its tags) and the
// sender's address.
func formValues(raw []byte) map[string]any {
	if bytes.HasPrefix(raw, []byte("From ")) {
		// The mbox separator line.
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return map[string]any{"message": string(raw)}
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	from := ""
	if a, err := mail.ParseAddress(msg.Header.Get("From")); err == nil {
		from = a.Address
	}
	var body strings.Builder
	readPart(&body, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0)
	return map[string]any{"subject": subject, "message": body.String(), "email": from}
}

func readPart(out *strings.Builder, contentType, encoding string, r io.Reader, depth int) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") && depth < 5 {
		mr := multipart.NewReader(r, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			readPart(out, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1)
		}
	}
	if !strings.HasPrefix(mt, "text/") {
		return
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &newlineSkipper{r})
	}
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	out.Write(b)
	out.WriteByte('\n')
}

// newlineSkipper drops the line breaks of a base64 body.
type newlineSkipper struct{ r io.Reader }

func (n *newlineSkipper) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	j := 0
	for _, c := range p[:k] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}

// trainPart says whether a message is in the training part: a fixed
// share of the corpus picked by a digest of its name, so the split is
// the same on every run and does not follow the files' order.
func trainPart(name string, share float64) bool {
	sum := sha256.Sum256([]byte(name))
	return float64(sum[0])/256 < share
}

// corpusPolicy is the spam: setting measured: every default, and a short
// list of blocked words a contact form's owner might write.
func corpusPolicy() *actions.SpamPolicy {
	p := actions.DefaultSpamPolicy()
	p.BlockedWords.Items = []string{"viagra", "cialis", "casino", "lottery", "payday loan", "work from home", "click here", "100% free", "act now", "limited time offer"}
	p.Scripts.Allow = []string{"Latin"}
	return p
}

// measure is the precision and recall of a verdict over messages.
type measure struct{ tp, fp, fn, tn int }

func (m *measure) add(isSpam, said bool) {
	switch {
	case isSpam && said:
		m.tp++
	case isSpam:
		m.fn++
	case said:
		m.fp++
	default:
		m.tn++
	}
}

func (m measure) precision() float64 { return ratio(m.tp, m.tp+m.fp) }
func (m measure) recall() float64    { return ratio(m.tp, m.tp+m.fn) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (m measure) String() string {
	return fmt.Sprintf("precision %.3f, recall %.3f (tp %d, fp %d, fn %d, tn %d)", m.precision(), m.recall(), m.tp, m.fp, m.fn, m.tn)
}

// corpusResult is what measureCorpus found.
type corpusResult struct {
	train, test      [2]int // ham, spam
	rules, withModel measure
	// falseBy counts the held-out ham called spam by each folder of the
	// corpus: [0] by the rules alone, [1] with the model.
	falseBy map[string]*[2]int
}

// measureCorpus trains the model on the training part (share of the
// messages) through the admin's path (Index.Learn) and scores the held-out
// part under p with the rules alone and with the model, each with its own
// memory of recent posts (the duplicates rule sees the part in order).
func measureCorpus(t testing.TB, msgs []corpusMessage, share float64, p *actions.SpamPolicy) corpusResult {
	t.Helper()
	ctx := context.Background()
	rdb := testRedis(t)
	index, store := NewIndex(rdb, nil), NewSpamStore(rdb)
	res := corpusResult{falseBy: map[string]*[2]int{}}
	falsely := func(m corpusMessage, k int) {
		folder, _, _ := strings.Cut(m.name, "/")
		if res.falseBy[folder] == nil {
			res.falseBy[folder] = &[2]int{}
		}
		res.falseBy[folder][k]++
	}
	var test []corpusMessage
	for i, m := range msgs {
		k := 0
		if m.spam {
			k = 1
		}
		if !trainPart(m.name, share) {
			test = append(test, m)
			res.test[k]++
			continue
		}
		res.train[k]++
		if err := index.Learn(ctx, fmt.Sprintf("train%06d", i), m.values, m.spam); err != nil {
			t.Fatal(err)
		}
	}
	alone, both := &spam.Checker{Memory: store}, &spam.Checker{Memory: store, Model: store}
	for i, m := range test {
		v, err := alone.Check(ctx, p, spam.Input{Action: "rules", Values: m.values})
		if err != nil {
			t.Fatal(err)
		}
		res.rules.add(m.spam, v.Verdict == submission.SpamHeld)
		if !m.spam && v.Verdict == submission.SpamHeld {
			falsely(m, 0)
		}
		v, err = both.Check(ctx, p, spam.Input{Action: "model", Values: m.values})
		if err != nil {
			t.Fatal(err)
		}
		res.withModel.add(m.spam, v.Verdict == submission.SpamHeld)
		if !m.spam && v.Verdict == submission.SpamHeld {
			falsely(m, 1)
		}
		if testing.Verbose() && i < 3 {
			t.Logf("%s: %+v", m.name, v)
		}
	}
	return res
}

var htmlTag = regexp.MustCompile(`<[^>]+>`)

// TestSpamCorpusHarness runs the measurement on the fixture (a few
// messages of each kind, in the corpus's format): the mail is read into
// form values, the split is the same each run, and the model, trained on
// its part, raises recall over the rules alone without costing precision.
func TestSpamCorpusHarness(t *testing.T) {
	msgs := readCorpus(t, "testdata/spamcorpus", "ham", "spam")
	if len(msgs) != 60 {
		t.Fatalf("%d messages in the fixture; want 60", len(msgs))
	}
	v := msgs[0].values
	if v["subject"] == "" || v["email"] == "" || !strings.Contains(v["message"].(string), " ") {
		t.Fatalf("a message as form values: %q", v)
	}
	for _, m := range msgs {
		if htmlTag.MatchString(m.values["subject"].(string)) || strings.Contains(m.values["message"].(string), "Content-Transfer-Encoding") {
			t.Fatalf("%s was not decoded: %q", m.name, m.values)
		}
	}
	p := corpusPolicy()
	p.Model.MinExamples = 5 // the fixture trains on a few of each kind
	res := measureCorpus(t, msgs, 0.6, p)
	t.Logf("train ham %d spam %d; test ham %d spam %d", res.train[0], res.train[1], res.test[0], res.test[1])
	t.Logf("rules alone: %s", res.rules)
	t.Logf("rules and model: %s", res.withModel)
	if res.train[0]+res.train[1] < 25 || res.test[0] < 5 || res.test[1] < 5 {
		t.Fatalf("the split: train %v, test %v", res.train, res.test)
	}
	if res.withModel.recall() <= res.rules.recall() || res.withModel.precision() < res.rules.precision() {
		t.Errorf("the model adds nothing: rules %s; with the model %s", res.rules, res.withModel)
	}
}
