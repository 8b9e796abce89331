// Package buildinfo says which build of formq is running: the version and
// commit that `make build` stamps in with -ldflags -X, and the Go version.
// Printed by --version and exported as the formq_build_info metric.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set by the linker:
//
//	go build -ldflags "-X github.com/formq/formq/internal/buildinfo.Version=v1.2.0 -X github.com/formq/formq/internal/buildinfo.Commit=$(git rev-parse HEAD)"
var (
	Version = "dev"
	Commit  = "unknown"
)

// Info is one build's identity.
type Info struct {
	Version, Commit, GoVersion string
}

// Get returns the stamped version and commit. Without a stamped commit, the
// VCS revision that the go command records in binaries built inside a git
// checkout is used (with "-dirty" when the tree had changes).
func Get() Info {
	info := Info{Version: Version, Commit: Commit, GoVersion: runtime.Version()}
	if info.Commit != "unknown" && info.Commit != "" {
		return info
	}
	info.Commit = "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			info.Commit = rev
			if dirty {
				info.Commit += "-dirty"
			}
		}
	}
	return info
}

// String is the line --version prints, after the program's name.
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, %s %s/%s)", i.Version, i.Commit, i.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// Collector is the formq_build_info gauge: always 1, the build in its labels,
// so dashboards can tell which versions a fleet runs.
func Collector() prometheus.Collector {
	i := Get()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "formq_build_info",
		Help:        "The running build of formq: version, commit and Go version in the labels; always 1.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "goversion": i.GoVersion},
	}, func() float64 { return 1 })
}
