package deployments

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads compose.yaml the way `docker compose config` does:
// schema validation, interpolation with env, paths made absolute.
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	wd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  wd,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(wd, "compose.yaml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("formq", true) })
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

// TestComposeFile validates compose.yaml against the Compose schema and
// checks what formq needs of it.
func TestComposeFile(t *testing.T) {
	env, _ := configEnv(t)
	p := loadCompose(t, map[string]string{})
	for _, err := range checkCompose(p, env, dockerfileStages(t)) {
		t.Error(err)
	}
}

// TestCheckComposeFindsProblems breaks the loaded project one way at a
// time and expects checkCompose to notice.
func TestCheckComposeFindsProblems(t *testing.T) {
	env, _ := configEnv(t)
	stages := dockerfileStages(t)
	cases := []struct {
		name    string
		breakIt func(p *types.Project)
		want    string
	}{
		{"redis evicts", func(p *types.Project) {
			s := p.Services["redis"]
			s.Command = types.ShellCommand{"redis-server", "--appendonly", "yes"}
			p.Services["redis"] = s
		}, "noeviction"},
		{"no healthcheck", func(p *types.Project) {
			s := p.Services["worker"]
			s.HealthCheck = nil
			p.Services["worker"] = s
		}, "healthcheck"},
		{"unknown setting", func(p *types.Project) {
			v := "1"
			p.Services["api"].Environment["FORMQ_BOGUS"] = &v
		}, "FORMQ_BOGUS"},
		{"actions not mounted", func(p *types.Project) {
			s := p.Services["api"]
			s.Volumes = nil
			p.Services["api"] = s
		}, "actions file"},
		{"build target", func(p *types.Project) {
			s := p.Services["worker"]
			s.Build.Target = "wroker"
			p.Services["worker"] = s
		}, "wroker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loadCompose(t, map[string]string{})
			tc.breakIt(p)
			errs := checkCompose(p, env, stages)
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), tc.want) }) {
				t.Errorf("checkCompose found %v, want a problem mentioning %q", errs, tc.want)
			}
		})
	}
}

func checkCompose(p *types.Project, env map[string]bool, stages []string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, name := range []string{"redis", "s3", "api", "worker"} {
		s, ok := p.Services[name]
		if !ok {
			bad("no service %s", name)
			continue
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 || s.HealthCheck.Disable {
			bad("service %s has no healthcheck", name)
		}
	}
	if redis, ok := p.Services["redis"]; ok {
		cmd := strings.Join(redis.Command, " ")
		if !strings.Contains(cmd, "--appendonly yes") || !strings.Contains(cmd, "--maxmemory-policy noeviction") {
			bad("redis must run with --appendonly yes and --maxmemory-policy noeviction (asynq loses tasks otherwise), has %q", cmd)
		}
	}
	for _, name := range []string{"api", "worker"} {
		s, ok := p.Services[name]
		if !ok {
			continue
		}
		for k := range s.Environment {
			if strings.HasPrefix(k, "FORMQ_") && !env[k] {
				bad("service %s: env %s is not a setting formq reads (formq.Config)", name, k)
			}
		}
		if s.Build == nil || !slices.Contains(stages, s.Build.Target) {
			bad("service %s: build target %q is not a stage of the Dockerfile %v", name, buildTarget(s), stages)
		}
		actionsPath := ""
		if v := s.Environment["FORMQ_ACTIONS"]; v != nil {
			actionsPath = *v
		}
		mounted := slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			if v.Type != types.VolumeTypeBind || v.Target != actionsPath {
				return false
			}
			_, err := os.Stat(v.Source)
			return err == nil
		})
		if actionsPath == "" || !mounted {
			bad("service %s: the actions file FORMQ_ACTIONS=%q is not mounted from a file that exists", name, actionsPath)
		}
		for _, dep := range []string{"redis", "s3"} {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				bad("service %s must wait for %s to be healthy", name, dep)
			}
		}
	}
	return errs
}

func buildTarget(s types.ServiceConfig) string {
	if s.Build == nil {
		return ""
	}
	return s.Build.Target
}

var fromLine = regexp.MustCompile(`(?i)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`)

// dockerfileStages reads the Dockerfile's stage names and checks that the
// images formq ships (api, worker) are static and non-root.
func dockerfileStages(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type stage struct {
		name, base, user string
		entrypoint       bool
	}
	var all []*stage
	cgoOff := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := fromLine.FindStringSubmatch(line); m != nil {
			all = append(all, &stage{name: m[2], base: m[1]})
			continue
		}
		if len(all) == 0 {
			continue
		}
		cur := all[len(all)-1]
		switch {
		case strings.HasPrefix(line, "USER "):
			cur.user = strings.TrimSpace(strings.TrimPrefix(line, "USER "))
		case strings.HasPrefix(line, "ENTRYPOINT "):
			cur.entrypoint = true
		case strings.Contains(line, "CGO_ENABLED=0"):
			cgoOff = true
		}
	}
	if !cgoOff {
		t.Error("Dockerfile: the build must set CGO_ENABLED=0 for static binaries")
	}
	var names []string
	for _, s := range all {
		names = append(names, s.name)
	}
	for _, want := range []string{"api", "worker"} {
		i := slices.IndexFunc(all, func(s *stage) bool { return s.name == want })
		if i < 0 {
			t.Errorf("Dockerfile: no stage %q", want)
			continue
		}
		s := all[i]
		if !strings.HasPrefix(s.base, "gcr.io/distroless/static") && s.base != "scratch" {
			t.Errorf("Dockerfile: stage %s is based on %s, want distroless/static or scratch", want, s.base)
		}
		if s.user == "" || s.user == "root" || strings.HasPrefix(s.user, "0") {
			t.Errorf("Dockerfile: stage %s runs as %q, want a non-root USER", want, s.user)
		}
		if !s.entrypoint {
			t.Errorf("Dockerfile: stage %s has no ENTRYPOINT", want)
		}
	}
	return names
}
