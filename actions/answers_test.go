package actions

import (
	"strings"
	"testing"
	"time"
)

// TestAnswersDeclaration: step names, {steps.NAME.KEY} placeholders and
// wait: are checked when the actions file loads.
func TestAnswersDeclaration(t *testing.T) {
	good := `actions:
  create-post:
    fields:
      title: {type: text}
    steps:
      - webhook: {name: save, url: "https://app.example.com/posts", secret_env: HOOK}
      - email: {to: "team@example.com", subject: "New post"}
    wait: 2s
    message: "Post {steps.save.id} created"
    redirect: /posts/{steps.save.slug}?t={title}
`
	as, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	a := as[0]
	if a.Wait != 2*time.Second || StepName(a.Steps[0]) != "save" || StepName(a.Steps[1]) != "" {
		t.Errorf("wait %s, step names %q %q", a.Wait, StepName(a.Steps[0]), StepName(a.Steps[1]))
	}
	for _, tc := range []struct{ name, change, want string }{
		{"duplicate name", `      - email: {name: save, to: "team@example.com", subject: "New post"}`, `step 2 (email): name "save" is used by an earlier step`},
		{"unknown step", `    message: "Post {steps.store.id} created"`, `message: placeholder {steps.store.id}: no step is named "store"`},
		{"no key", `    redirect: /posts/{steps.save}`, `redirect: placeholder {steps.save}: want {steps.NAME.KEY}`},
		{"wait too long", `    wait: 30s`, `wait "30s": want a duration up to 10s`},
		{"wait not a duration", `    wait: soon`, `wait "soon": want a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := strings.SplitN(strings.TrimSpace(tc.change), ":", 2)[0]
			var lines []string
			for _, l := range strings.Split(good, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), key+":") && (key != "-") {
					l = tc.change
				}
				lines = append(lines, l)
			}
			if key == "-" { // a step: replace the second one
				lines[6] = tc.change
			}
			_, err := Parse("bad.yaml", []byte(strings.Join(lines, "\n")))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
