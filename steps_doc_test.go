package formq_test

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formq/formq"
	"github.com/formq/formq/jobs/sink/cdn"
	"github.com/formq/formq/jobs/sink/next"
	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/jobs/step/email"
	"github.com/formq/formq/jobs/step/notify"
	"github.com/formq/formq/jobs/step/thumbnail"
	"github.com/formq/formq/jobs/step/webhook"
	"github.com/formq/formq/submission"
)

// stepsSection is the "## Steps" section of docs/actions.md, cut into its
// "### " subsections by heading (the text before the first one under "").
func stepsSection(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("docs/actions.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Steps\n")
	if !ok {
		t.Fatal("docs/actions.md has no '## Steps' section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	parts := strings.Split(section, "\n### ")
	out := map[string]string{"": parts[0]}
	for _, p := range parts[1:] {
		heading, body, _ := strings.Cut(p, "\n")
		out[heading] = body
	}
	return out
}

// subsection is the subsection whose heading names `name`.
func subsection(t *testing.T, sections map[string]string, name string) string {
	t.Helper()
	for heading, body := range sections {
		if strings.Contains(heading, "`"+name+"`") {
			return body
		}
	}
	t.Fatalf("docs/actions.md, Steps: no subsection headed with `%s`", name)
	return ""
}

// rowsOf lists the names in the first cell of every table row of text.
func rowsOf(text string) []string {
	var names []string
	for line := range strings.Lines(text) {
		if name := firstCell(line); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// jsonKeys are the settings a settings struct decodes: its json names.
func jsonKeys(v any) []string {
	var keys []string
	for _, f := range reflect.VisibleFields(reflect.TypeOf(v)) {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// seconds writes a whole number of seconds as the docs do: 15s, 60s.
func seconds(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }

// TestStepsReferenceCoversEveryStepAndSetting holds the Steps section of
// docs/actions.md to the code: every built-in step type has a subsection
// with a row for each setting its check accepts and the type's default
// timeout; the settings every step takes are listed with their defaults;
// every revalidation sink is named with its settings and default timeout,
// and every setting of an action's revalidate has a row. A step type or a
// setting added to the code without its line in the docs fails here.
func TestStepsReferenceCoversEveryStepAndSetting(t *testing.T) {
	sections := stepsSection(t)

	// The settings of each built-in step type, as its check decodes them.
	settings := map[string]any{
		builtin.Thumbnail: builtin.ThumbnailSettings{},
		builtin.Webhook:   builtin.WebhookSettings{},
		builtin.Email:     builtin.EmailSettings{},
		builtin.Notify:    builtin.NotifySettings{},
	}
	// The implementations, for each type's default timeout.
	impls := map[string]step.Type{
		builtin.Thumbnail: thumbnail.Step(nil),
		builtin.Webhook:   webhook.Step(nil, nil, nil),
		builtin.Email:     email.Step(nil, nil),
		builtin.Notify:    notify.Step(nil, notify.Config{}),
	}
	checks := builtin.Checks(nil)
	for name, typ := range checks {
		t.Run(name, func(t *testing.T) {
			s, ok := settings[name]
			if !ok {
				t.Fatalf("built-in step type %q: the test does not know its settings struct; add it to settings above and document it in docs/actions.md", name)
			}
			// The struct is the one the check decodes: each of its keys is
			// known to the check, and a key it lacks is not.
			if err := typ.Check(map[string]any{"no_such_setting": 1}); err == nil || !strings.Contains(err.Error(), "no_such_setting") {
				t.Fatalf("the check of %s accepts an unknown setting (%v): the probe below cannot tell known settings", name, err)
			}
			body := subsection(t, sections, name)
			rows := rowsOf(body)
			for _, key := range jsonKeys(s) {
				if err := typ.Check(map[string]any{key: nil}); err != nil && strings.Contains(err.Error(), "unknown field") {
					t.Errorf("%s: the settings struct has %q, which the check refuses: %v", name, key, err)
				}
				if !slices.Contains(rows, key) {
					t.Errorf("docs/actions.md, Steps, `%s`: no row for the setting %q", name, key)
				}
			}
			impl, ok := impls[name]
			if !ok {
				t.Fatalf("built-in step type %q: the test does not know its implementation", name)
			}
			timeout := impl.Timeout
			if timeout == 0 {
				timeout = step.DefaultTimeout
			}
			if want := "Default `timeout`: `" + seconds(timeout) + "`"; !strings.Contains(strings.Join(strings.Fields(body), " "), want) {
				t.Errorf("docs/actions.md, Steps, `%s`: want %q", name, want)
			}
		})
	}
	if len(checks) != len(settings) {
		t.Errorf("the test knows %d step types, the code has %d", len(settings), len(checks))
	}

	// The settings every step takes, with their defaults.
	common := map[string]string{
		"timeout":      "the step type's",
		"max_attempts": "`" + strconv.Itoa(step.DefaultAttempts) + "`",
		"backoff":      "`" + seconds(step.DefaultBackoff) + "`",
	}
	every := sections["Settings every step takes"]
	if every == "" {
		t.Fatal("docs/actions.md, Steps: no 'Settings every step takes' subsection")
	}
	cfg := map[string]any{"timeout": "1s", "max_attempts": 1, "backoff": "1s"}
	if _, rest, err := (step.Type{}).Options(cfg); err != nil || len(rest) != 0 {
		t.Fatalf("the common options are not %v: left %v, %v", cfg, rest, err)
	}
	for line := range strings.Lines(every) {
		if name := firstCell(line); common[name] != "" {
			if !strings.Contains(line, common[name]) {
				t.Errorf("docs/actions.md, Steps, %s: want the default %s in %q", name, common[name], line)
			}
			delete(common, name)
		}
	}
	for name := range common {
		t.Errorf("docs/actions.md, Steps: no row for the setting every step takes %q", name)
	}

	// The action's revalidate and the sinks the worker builds from its
	// environment: each named with every variable that configures it.
	reval := subsection(t, sections, "revalidate")
	for _, key := range jsonKeys(submission.Revalidate{}) {
		if !slices.Contains(rowsOf(reval), key) {
			t.Errorf("docs/actions.md, Steps, revalidation: no row for revalidate's %q", key)
		}
	}
	client := webhook.NewClient(false)
	var sinks []step.Sink
	for _, build := range []func() (step.Sink, error){
		func() (step.Sink, error) {
			return next.NewRevalidate("https://app.example.com/r", "a-secret-of-16-chars", client)
		},
		func() (step.Sink, error) {
			return next.NewSink("https://app.example.com/r", "a-secret-of-16-chars", client)
		},
		func() (step.Sink, error) {
			return cdn.NewCloudflare(cdn.CloudflareConfig{APIURL: "https://api.example.com", Token: "t", ZoneID: "z", SiteURL: "https://www.example.com"})
		},
		func() (step.Sink, error) {
			return cdn.NewFastly(cdn.FastlyConfig{APIURL: "https://api.example.com", Key: "k", ServiceID: "s"})
		},
	} {
		s, err := build()
		if err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, s)
	}
	sinkRows := map[string]string{}
	for line := range strings.Lines(reval) {
		sinkRows[firstCell(line)] = line
	}
	var mentioned strings.Builder
	for _, s := range sinks {
		row, ok := sinkRows[s.Name]
		if !ok {
			t.Errorf("docs/actions.md, Steps, revalidation: no row for the sink %q", s.Name)
			continue
		}
		if want := "`" + seconds(s.Timeout) + "`"; !strings.Contains(row, want) {
			t.Errorf("docs/actions.md, Steps, sink %s: want its default timeout %s in %q", s.Name, want, row)
		}
		mentioned.WriteString(row)
	}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[formq.SinksConfig]()) {
		if env := f.Tag.Get("env"); env != "" && !strings.Contains(mentioned.String(), "`"+env+"`") {
			t.Errorf("docs/actions.md, Steps, revalidation: no sink's row names %s", env)
		}
	}
}

// firstCell is the first cell of a table row without its backquotes, or
// "" for a line that is not a row.
func firstCell(line string) string {
	cells := strings.Split(line, "|")
	if !strings.HasPrefix(line, "|") || len(cells) < 3 {
		return ""
	}
	return strings.Trim(strings.TrimSpace(cells[1]), "`")
}
