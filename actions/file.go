package actions

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/formq/formq/internal/bytesize"
	"github.com/formq/formq/internal/period"
	"github.com/formq/formq/submission"
	"go.yaml.in/yaml/v3"
)

// Defaults for options an action leaves out. DefaultMaxBody is the least
// max_body of an action without one; DefaultMaxBodyFor gives the default of
// an action that declares uploads.
const (
	DefaultMaxBody     = 10 << 20
	DefaultHoneypot    = "_gotcha"
	DefaultIdempotency = 24 * time.Hour
	// MaxBodyFieldRoom is what a default max_body adds to the declared
	// uploads for the other fields and the multipart framing.
	MaxBodyFieldRoom = 1 << 20
)

// DefaultMaxBodyFor is the max_body of an action that sets none: room for
// every declared upload at max_files files of max_size each, plus
// MaxBodyFieldRoom, and never less than DefaultMaxBody. So an action with
// `blob: {max_size: 2GB}` accepts a 2 GB file without also setting max_body.
func DefaultMaxBodyFor(uploads []*Upload) int64 {
	total := int64(MaxBodyFieldRoom)
	for _, u := range uploads {
		files := int64(max(u.MaxFiles, 1))
		if u.MaxSize <= 0 {
			continue
		}
		if u.MaxSize > (math.MaxInt64-total)/files {
			return math.MaxInt64
		}
		total += u.MaxSize * files
	}
	return max(total, DefaultMaxBody)
}

// FieldTypes are the field types the actions file accepts.
var FieldTypes = []string{"text", "textarea", "email", "url", "number", "integer", "boolean", "date", "select", "hidden", "password"}

// Problem is one thing wrong in an actions file, with its place.
type Problem struct {
	File   string
	Line   int
	Action string
	Field  string
	Msg    string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(":")
	if p.Action != "" {
		fmt.Fprintf(&b, " action %q", p.Action)
	}
	if p.Field != "" {
		fmt.Fprintf(&b, " field %q", p.Field)
	}
	if p.Action != "" || p.Field != "" {
		b.WriteString(":")
	}
	return b.String() + " " + p.Msg
}

// FileError lists every problem of an invalid actions file.
type FileError struct{ Problems []Problem }

// Its text is one line, so a process that cannot start for it says why
// in one line: the problem itself, or the number of problems followed by
// each, separated by "; " (`api check` prints them one a line).
func (e *FileError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].String()
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("invalid actions file, %d problems: %s", len(e.Problems), strings.Join(lines, "; "))
}

// ErrInvalidFile is matched by every *FileError.
var ErrInvalidFile = errors.New("invalid actions file")

// Is makes errors.Is(err, ErrInvalidFile) true for a *FileError.
func (e *FileError) Is(target error) bool { return target == ErrInvalidFile }

// LoadFile reads and checks an actions file.
func LoadFile(path string) ([]*Action, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read actions file: %w", err)
	}
	return Parse(path, data)
}

type rawFile struct {
	Actions        yaml.Node `yaml:"actions"`
	UploadProfiles yaml.Node `yaml:"upload_profiles"`
	Theme          *Theme    `yaml:"theme"`
}

type rawAction struct {
	Title       string                `yaml:"title"`
	Fields      yaml.Node             `yaml:"fields"`
	Uploads     yaml.Node             `yaml:"uploads"`
	Steps       yaml.Node             `yaml:"steps"`
	Revalidate  submission.Revalidate `yaml:"revalidate"`
	Redirect    string                `yaml:"redirect"`
	Message     string                `yaml:"message"`
	MaxBody     string                `yaml:"max_body"`
	Queue       string                `yaml:"queue"`
	Origins     []string              `yaml:"origins"`
	Auth        string                `yaml:"auth"`
	RateLimit   string                `yaml:"rate_limit"`
	Honeypot    yaml.Node             `yaml:"honeypot"`
	Idempotency string                `yaml:"idempotency"`
	Bound       []string              `yaml:"bound"`
	StrictOrig  bool                  `yaml:"strict_origin"`
	Template    string                `yaml:"template"`
	Captcha     *rawCaptcha           `yaml:"captcha"`
	Wait        string                `yaml:"wait"`
	MinFillTime string                `yaml:"min_fill_time"`
	Retention   string                `yaml:"retention"`
	Spam        *rawSpam              `yaml:"spam"`
	Digest      *rawDigest            `yaml:"digest"`
	ErrorRedir  string                `yaml:"error_redirect"`
	Theme       *Theme                `yaml:"theme"`
	Messages    map[string]string     `yaml:"messages"`
	Lang        string                `yaml:"lang"`
}

// rawField is a field's keys besides its rules, which fieldRules read.
type rawField struct {
	Type         string            `yaml:"type"`
	Label        string            `yaml:"label"`
	Multiple     bool              `yaml:"multiple"`
	Messages     map[string]string `yaml:"messages"`
	Placeholder  string            `yaml:"placeholder"`
	Help         string            `yaml:"help"`
	Autocomplete string            `yaml:"autocomplete"`
	Default      string            `yaml:"default"`
	Personal     bool              `yaml:"personal"`
}

type rawUpload struct {
	Label     string            `yaml:"label"`
	Required  bool              `yaml:"required"`
	MaxSize   string            `yaml:"max_size"`
	MaxFiles  int               `yaml:"max_files"`
	Types     []string          `yaml:"types"`
	Messages  map[string]string `yaml:"messages"`
	Resumable bool              `yaml:"resumable"`
}

var namePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// Parse reads an actions file's bytes; file names the source in problems.
// Steps are not checked; see ParseWith.
func Parse(file string, data []byte) ([]*Action, error) {
	return ParseWith(file, data, ParseOptions{})
}

// ParseWith is Parse with options, such as the step checks.
func ParseWith(file string, data []byte, o ParseOptions) ([]*Action, error) {
	d, err := parse(file, data, o)
	if err != nil {
		return nil, err
	}
	return d.Actions, nil
}

// Declarations is everything an actions file declares.
type Declarations struct {
	Actions  []*Action
	Profiles UploadProfiles
	// Theme is the top-level theme, for every hosted form.
	Theme *Theme
}

// Load reads and checks an actions file once: its actions and its upload
// profiles, every problem of both listed together.
func Load(path string, o ParseOptions) (*Declarations, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read actions file: %w", err)
	}
	return parse(path, data, o)
}

func parse(file string, data []byte, o ParseOptions) (*Declarations, error) {
	var problems []Problem
	add := func(line int, action, field, format string, args ...any) {
		problems = append(problems, Problem{File: file, Line: line, Action: action, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	var raw rawFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		add(0, "", "", "%v", err)
		return nil, &FileError{Problems: problems}
	}
	profiles, profileProblems := parseProfiles(file, &raw.UploadProfiles)
	problems = append(problems, profileProblems...)
	for _, m := range raw.Theme.problems() {
		add(0, "", "", "%s", m)
	}
	if raw.Actions.Kind != yaml.MappingNode || len(raw.Actions.Content) == 0 {
		add(raw.Actions.Line, "", "", "no actions: want a mapping under 'actions:'")
		return nil, &FileError{Problems: problems}
	}
	var list []*Action
	for name, node := range pairs(&raw.Actions) {
		// Problems point at the line of the key they are about, else at
		// the action's name.
		nameLine := keyLine(&raw.Actions, name, node.Line)
		at := func(key string) int { return keyLine(node, key, nameLine) }
		if !namePattern.MatchString(name) {
			add(nameLine, name, "", "action name must be letters, digits, - or _, starting with a letter")
		}
		var ra rawAction
		unknown, err := decodeStrict(node, &ra)
		if unknown != nil {
			line := nameLine
			if u, ok := unknown.(unknownKeys); ok {
				line = at(u[0])
			}
			add(line, name, "", "%v", unknown)
		}
		if err != nil {
			add(nameLine, name, "", "%v", err)
			continue
		}
		a := &Action{
			Name: name, Title: ra.Title,
			Protection: Protection{Origins: ra.Origins, Auth: ra.Auth, Bound: ra.Bound, StrictOrigin: ra.StrictOrig,
				MaxBody: DefaultMaxBody, Honeypot: DefaultHoneypot, Idempotency: DefaultIdempotency},
			Delivery: Delivery{Queue: ra.Queue, Revalidate: ra.Revalidate},
			Response: Response{Redirect: ra.Redirect, Message: ra.Message, Template: ra.Template,
				ErrorRedirect: ra.ErrorRedir, Theme: ra.Theme},
		}
		if a.Title == "" {
			a.Title = humanize(name)
		}
		if a.Template != "" {
			if !filepath.IsAbs(a.Template) {
				a.Template = filepath.Join(filepath.Dir(file), a.Template)
			}
			if _, err := os.Stat(a.Template); err != nil {
				add(at("template"), name, "", "template %q: %v", ra.Template, err)
			}
		}
		if a.Queue == "" {
			a.Queue = submission.DefaultQueue
		} else if !slices.Contains(submission.Queues, a.Queue) {
			add(at("queue"), name, "", "queue %q: want one of %s", a.Queue, strings.Join(submission.Queues, ", "))
		}
		switch a.Auth {
		case "", "required", "optional":
		default:
			add(at("auth"), name, "", "auth %q: want required or optional", a.Auth)
		}
		if ra.MaxBody != "" {
			n, err := bytesize.Parse(ra.MaxBody)
			if err != nil || n <= 0 {
				add(at("max_body"), name, "", "max_body %q: want a size like 12MB", ra.MaxBody)
			}
			a.MaxBody = n
		}
		if ra.Idempotency != "" {
			d, err := time.ParseDuration(ra.Idempotency)
			if err != nil || d <= 0 {
				add(at("idempotency"), name, "", "idempotency %q: want a duration like 24h", ra.Idempotency)
			}
			a.Idempotency = d
		}
		if ra.RateLimit != "" {
			rl, err := parseRateLimit(ra.RateLimit)
			if err != nil {
				add(at("rate_limit"), name, "", "rate_limit %q: %v", ra.RateLimit, err)
			}
			a.RateLimit = rl
		}
		switch ra.Honeypot.Kind {
		case 0:
		case yaml.ScalarNode:
			switch ra.Honeypot.Value {
			case "false", "off", "no":
				a.Honeypot = ""
			case "true", "on", "yes":
			default:
				if !namePattern.MatchString(ra.Honeypot.Value) && ra.Honeypot.Value != DefaultHoneypot {
					add(ra.Honeypot.Line, name, "", "honeypot %q: want true, false or a field name", ra.Honeypot.Value)
				}
				a.Honeypot = ra.Honeypot.Value
			}
		default:
			add(ra.Honeypot.Line, name, "", "honeypot: want true, false or a field name")
		}
		if placeholderBeforePath(a.Redirect) {
			add(at("redirect"), name, "", "redirect %q: placeholders may only stand in the path, query or fragment, never in the scheme or host (a value could send people to another site)", a.Redirect)
		}
		if ra.Captcha != nil {
			c, msgs := parseCaptcha(ra.Captcha)
			for _, m := range msgs {
				add(at("captcha"), name, "", "%s", m)
			}
			a.Captcha = c
		}
		if ra.Retention != "" {
			d, err := period.Parse(ra.Retention)
			if err != nil {
				add(at("retention"), name, "", "retention %q: %v", ra.Retention, err)
			}
			a.Retention = d
		}
		if ra.Spam != nil {
			p, msgs := parseSpam(ra.Spam)
			for _, m := range msgs {
				add(at("spam"), name, "", "%s", m)
			}
			a.Spam = p
		}
		if ra.Digest != nil {
			d, msgs := parseDigest(ra.Digest)
			for _, m := range msgs {
				add(at("digest"), name, "", "%s", m)
			}
			a.Digest = d
		}
		if ra.MinFillTime != "" {
			d, msg := parseMinFillTime(ra.MinFillTime)
			if msg != "" {
				add(at("min_fill_time"), name, "", "%s", msg)
			}
			a.MinFillTime = d
		}
		for _, m := range a.Theme.problems() {
			add(at("theme"), name, "", "%s", m)
		}
		if a.ErrorRedirect != "" && !LinkTarget(a.ErrorRedirect) {
			add(at("error_redirect"), name, "", "error_redirect %q: want an http(s) URL or a path starting with /", a.ErrorRedirect)
		}
		for _, o := range a.Origins {
			if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				add(at("origins"), name, "", "origin %q: want scheme://host[:port]", o)
			}
		}
		// Each step's problems point at its own line.
		for _, item := range ra.Steps.Content {
			var s map[string]map[string]any
			if err := item.Decode(&s); err != nil || len(s) != 1 {
				add(item.Line, name, "", "each step is one mapping like '- webhook: {url: ...}'")
				continue
			}
			for typ, cfg := range s {
				step := submission.Step{Type: typ, Config: cfg}
				if msg := o.checkStep(step); msg != "" {
					add(item.Line, name, "", "%s", msg)
				}
				a.Steps = append(a.Steps, step)
			}
		}
		if ra.Steps.Kind != 0 && ra.Steps.Kind != yaml.SequenceNode {
			add(at("steps"), name, "", "steps: want a list like '- webhook: {url: ...}'")
		}
		if ra.Wait != "" {
			d, msg := parseWait(ra.Wait)
			if msg != "" {
				add(at("wait"), name, "", "%s", msg)
			}
			a.Wait = d
		}
		for _, m := range checkAnswers(a) {
			add(nameLine, name, "", "%s", m)
		}
		if ra.Fields.Kind != 0 {
			for fname, fnode := range pairs(&ra.Fields) {
				f, msgs := parseField(fname, fnode)
				for _, m := range msgs {
					add(keyLine(&ra.Fields, fname, fnode.Line), name, fname, "%s", m)
				}
				if f != nil {
					a.Fields = append(a.Fields, f)
				}
			}
		}
		for _, f := range a.Fields {
			for _, r := range fieldRules {
				if r.checkAction != nil {
					for _, m := range r.checkAction(a, f) {
						add(keyLine(&ra.Fields, f.Name, nameLine), name, f.Name, "%s", m)
					}
				}
			}
		}
		if ra.Uploads.Kind != 0 {
			for uname, unode := range pairs(&ra.Uploads) {
				u, msgs := parseUpload(uname, unode)
				uline := keyLine(&ra.Uploads, uname, unode.Line)
				for _, m := range msgs {
					add(uline, name, uname, "%s", m)
				}
				if u != nil {
					if a.Field(uname) != nil {
						add(uline, name, uname, "declared both as a field and as an upload")
					}
					a.Uploads = append(a.Uploads, u)
				}
			}
		}
		if m := checkLang(ra.Lang); m != "" {
			add(at("lang"), name, "", "%s", m)
		}
		a.Lang = ra.Lang
		for _, m := range a.applyMessages(ra.Messages) {
			add(at("messages"), name, "", "%s", m)
		}
		for _, m := range checkSubmitterMail(a) {
			add(at("steps"), name, "", "%s", m)
		}
		for _, p := range checkThumbnailTypes(a) {
			add(at("steps"), name, p[0], "%s", p[1])
		}
		for _, b := range a.Bound {
			if a.Field(b) != nil || a.Upload(b) != nil {
				add(at("bound"), name, b, "bound argument has the name of a form field")
			}
		}
		if ra.MaxBody == "" {
			a.MaxBody = DefaultMaxBodyFor(a.Uploads)
		}
		// An explicit max_body may be below the sum of the uploads (a cap on
		// the whole request), but one file at its max_size must fit.
		for _, u := range a.Uploads {
			if u.MaxSize > a.MaxBody {
				add(keyLine(&ra.Uploads, u.Name, at("max_body")), name, u.Name, "max_size %s is over the action's max_body %s: raise max_body or leave it out (the default fits the uploads)", FormatSize(u.MaxSize), FormatSize(a.MaxBody))
			}
		}
		list = append(list, a)
	}
	if len(problems) > 0 {
		return nil, &FileError{Problems: problems}
	}
	return &Declarations{Actions: list, Profiles: profiles, Theme: raw.Theme}, nil
}

func parseField(name string, node *yaml.Node) (*Field, []string) {
	var msgs []string
	if !namePattern.MatchString(name) {
		msgs = append(msgs, "field name must be letters, digits, - or _, starting with a letter")
	}
	// The rules' keys go to their fieldRules entries, the rest to rawField.
	rest, settings := *node, map[*fieldRule]*yaml.Node{}
	if node.Kind == yaml.MappingNode {
		rest.Content = nil
		for i := 0; i+1 < len(node.Content); i += 2 {
			if r := ruleKey(node.Content[i].Value); r != nil {
				settings[r] = node.Content[i+1]
			} else {
				rest.Content = append(rest.Content, node.Content[i], node.Content[i+1])
			}
		}
	}
	var rf rawField
	unknown, err := decodeStrict(&rest, &rf)
	if unknown != nil {
		msgs = append(msgs, unknown.Error())
	}
	if err != nil {
		return nil, append(msgs, err.Error())
	}
	f := &Field{
		Name: name, Type: rf.Type, Label: rf.Label, Multiple: rf.Multiple, Messages: rf.Messages, Personal: rf.Personal,
		InputHints: InputHints{Placeholder: rf.Placeholder, Help: rf.Help, Autocomplete: rf.Autocomplete, Default: rf.Default},
	}
	if f.Type == "" {
		f.Type = "text"
	}
	if f.Label == "" {
		f.Label = humanize(name)
	}
	if !slices.Contains(FieldTypes, f.Type) {
		msgs = append(msgs, fmt.Sprintf("type %q: want one of %s", f.Type, strings.Join(FieldTypes, ", ")))
	}
	for i := range fieldRules {
		if n, ok := settings[&fieldRules[i]]; ok {
			msgs = append(msgs, fieldRules[i].parse(f, n)...)
		}
	}
	for _, r := range fieldRules {
		if r.check != nil {
			msgs = append(msgs, r.check(f)...)
		}
	}
	for rule := range f.Messages {
		if !slices.Contains(messageRules, rule) {
			msgs = append(msgs, fmt.Sprintf("messages: unknown rule %q, want one of %s", rule, strings.Join(messageRules, ", ")))
		}
	}
	return f, msgs
}

func parseUpload(name string, node *yaml.Node) (*Upload, []string) {
	var msgs []string
	if !namePattern.MatchString(name) {
		msgs = append(msgs, "upload name must be letters, digits, - or _, starting with a letter")
	}
	var ru rawUpload
	unknown, err := decodeStrict(node, &ru)
	if unknown != nil {
		msgs = append(msgs, unknown.Error())
	}
	if err != nil {
		return nil, append(msgs, err.Error())
	}
	u := &Upload{Name: name, Label: ru.Label, Required: ru.Required, MaxFiles: ru.MaxFiles, Types: ru.Types, Messages: ru.Messages, Resumable: ru.Resumable}
	if u.Label == "" {
		u.Label = humanize(name)
	}
	if u.MaxFiles == 0 {
		u.MaxFiles = 1
	} else if u.MaxFiles < 0 {
		msgs = append(msgs, "max_files must be positive")
	}
	if ru.MaxSize == "" {
		msgs = append(msgs, "max_size is required (like 5MB)")
	} else if n, err := bytesize.Parse(ru.MaxSize); err != nil || n <= 0 {
		msgs = append(msgs, fmt.Sprintf("max_size %q: want a size like 5MB", ru.MaxSize))
	} else {
		u.MaxSize = n
	}
	for i, t := range u.Types {
		u.Types[i] = strings.ToLower(strings.TrimSpace(t))
		if !strings.Contains(t, "/") {
			msgs = append(msgs, fmt.Sprintf("type %q: want a media type like image/png", t))
		}
	}
	for rule := range u.Messages {
		if !slices.Contains(uploadMessageRules, rule) {
			msgs = append(msgs, fmt.Sprintf("messages: unknown rule %q, want one of %s", rule, strings.Join(uploadMessageRules, ", ")))
		}
	}
	return u, msgs
}

// parseRateLimit reads "10/1m", "10/minute" or "100/h".
func parseRateLimit(s string) (*RateLimit, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	limit, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || limit <= 0 {
		return nil, errors.New("want count/period like 10/1m")
	}
	per = strings.TrimSpace(per)
	named := map[string]time.Duration{"s": time.Second, "second": time.Second, "m": time.Minute, "minute": time.Minute, "h": time.Hour, "hour": time.Hour, "d": 24 * time.Hour, "day": 24 * time.Hour}
	d, ok := named[per]
	if !ok {
		d, err = time.ParseDuration(per)
		if err != nil || d <= 0 {
			return nil, errors.New("want count/period like 10/1m")
		}
	}
	return &RateLimit{Limit: limit, Period: d}, nil
}

// keyLine is the line of key in mapping m, or fallback when m has no
// such key.
func keyLine(m *yaml.Node, key string, fallback int) int {
	if m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i].Line
			}
		}
	}
	return fallback
}

// pairs iterates a mapping node's keys and values in file order.
func pairs(n *yaml.Node) func(func(string, *yaml.Node) bool) {
	return func(yield func(string, *yaml.Node) bool) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !yield(n.Content[i].Value, n.Content[i+1]) {
				return
			}
		}
	}
}

// decodeStrict decodes a node and reports keys that v has no place for,
// which yaml.Node.Decode alone ignores. The values are decoded even when
// there are unknown keys, so that every other problem is found too, and
// nested nodes keep their lines in the original file.
func decodeStrict(n *yaml.Node, v any) (unknown, err error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("want a mapping, got %q", n.Value)
	}
	if b, err := yaml.Marshal(n); err == nil {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(reflect.New(reflect.TypeOf(v).Elem()).Interface()); err != nil {
			if m := unknownKey.FindAllStringSubmatch(err.Error(), -1); m != nil {
				var keys []string
				for _, k := range m {
					keys = append(keys, k[1])
				}
				unknown = unknownKeys(keys)
			}
		}
	}
	if err := n.Decode(v); err != nil {
		return unknown, errors.New(strings.TrimSpace(strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n ", ""), "yaml: unmarshal errors:")))
	}
	return unknown, nil
}

var unknownKey = regexp.MustCompile(`field (\S+) not found in type`)

// unknownKeys are the keys of a mapping its type has no place for.
type unknownKeys []string

func (u unknownKeys) Error() string { return "unknown key " + strings.Join(u, ", ") }

// placeholderBeforePath says whether a {placeholder} of a redirect stands
// where a posted value could choose the scheme or the host: at the very
// start, or before the path of "//host" and "scheme://host" URLs.
func placeholderBeforePath(tmpl string) bool {
	i := strings.Index(tmpl, "{")
	if i < 0 {
		return false
	}
	prefix := tmpl[:i]
	if prefix == "" {
		return true
	}
	rest := prefix
	if j := strings.IndexAny(prefix, ":/?#"); j >= 0 && prefix[j] == ':' {
		rest = prefix[j+1:] // after the scheme
		if !strings.HasPrefix(rest, "//") {
			return true // browsers read "https:{host}" and "https:/{host}" as a host
		}
	}
	if !strings.HasPrefix(rest, "//") {
		return false
	}
	// An authority follows: the placeholder must come after it ends.
	return !strings.ContainsAny(rest[2:], "/?#")
}
