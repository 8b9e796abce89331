// Package reload keeps a process's actions file current without a
// restart: the file is loaded again on SIGHUP and when its content
// changes, and a file that does not load leaves the version running in
// place, with the reason logged. Both the API and the worker use it; what
// "loading" means (new routes, new steps) is theirs.
package reload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Load builds everything that depends on the actions file and puts it in
// service; version names the file's content. An error leaves what runs
// untouched.
type Load func(ctx context.Context, version string) error

// Digest names a version of the actions file by its content: the first
// 12 hex digits of its SHA-256.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

// ReadVersion reads the file and names its content.
func ReadVersion(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read actions file: %w", err)
	}
	return Digest(data), nil
}

// Reloader reloads one actions file. It is safe for concurrent use: a
// reload runs at a time.
type Reloader struct {
	path string
	load Load
	log  *slog.Logger

	mu       sync.Mutex // held by a reload
	version  string     // the version in service
	loadedAt time.Time
	refused  string // the last version that failed to load, not tried again on change

	info    *prometheus.GaugeVec
	reloads *prometheus.CounterVec
}

// New makes the reloader of the file at path, whose version in service
// is version (loaded by the caller at start). It registers on reg, when
// not nil, formq_actions_version_info{version} (1 for the version in
// service) and formq_actions_reloads_total{result="ok"|"failed"}.
func New(path, version string, load Load, reg prometheus.Registerer, log *slog.Logger) *Reloader {
	r := &Reloader{path: path, load: load, log: log, version: version, loadedAt: time.Now().UTC(),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "formq_actions_version_info",
			Help: "The version of the actions file in service (the first 12 hex digits of its SHA-256), as a label of a 1.",
		}, []string{"version"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formq_actions_reloads_total",
			Help: "Reloads of the actions file, by result: ok, or failed (the previous version stays in service).",
		}, []string{"result"}),
	}
	r.info.WithLabelValues(version).Set(1)
	r.reloads.WithLabelValues("ok")
	r.reloads.WithLabelValues("failed")
	if reg != nil {
		reg.MustRegister(r.info, r.reloads)
	}
	return r
}

// Version is the version in service and when it was loaded.
func (r *Reloader) Version() (string, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version, r.loadedAt
}

// Status is the version in service as /readyz shows it.
func (r *Reloader) Status() map[string]any {
	v, at := r.Version()
	return map[string]any{"version": v, "loadedAt": at.Format(time.RFC3339)}
}

// Reload loads the file again (SIGHUP): even when its content did not
// change, so a file naming others (templates) is read afresh. An error
// says why the file was not taken; the version in service stays.
func (r *Reloader) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reload(ctx, "signal")
}

// reload loads the file; the caller holds mu.
func (r *Reloader) reload(ctx context.Context, why string) error {
	version, err := ReadVersion(r.path)
	if err == nil {
		err = r.load(ctx, version)
	}
	if err != nil {
		r.refused = version
		r.reloads.WithLabelValues("failed").Inc()
		r.log.Error("actions file not reloaded; the previous version stays in service",
			"file", r.path, "trigger", why, "version", r.version, "refused", version, "err", err)
		return err
	}
	old := r.version
	r.version, r.loadedAt, r.refused = version, time.Now().UTC(), ""
	r.info.Reset()
	r.info.WithLabelValues(version).Set(1)
	r.reloads.WithLabelValues("ok").Inc()
	r.log.Info("actions file reloaded", "file", r.path, "trigger", why, "version", version, "previous", old)
	return nil
}

// Run looks at the file every interval until ctx ends and reloads it when
// its content differs from the version in service and from the last
// version refused (a bad file is reported once, not every interval).
func (r *Reloader) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		version, err := ReadVersion(r.path)
		if err != nil {
			continue // being replaced, or gone: the version in service stays
		}
		r.mu.Lock()
		if version != r.version && version != r.refused {
			_ = r.reload(ctx, "change")
		}
		r.mu.Unlock()
	}
}

// WhileServing runs serve (a process's main loop) and, while it runs,
// reloads the actions file on every SIGHUP instead of letting the signal
// stop the process. It returns serve's error once the reloads stopped.
func (r *Reloader) WhileServing(ctx context.Context, serve func(context.Context) error) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	hctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.onSignal(hctx, hup) })
	err := serve(ctx)
	stop()
	wg.Wait()
	return err
}

// onSignal reloads on every value of signals until ctx ends.
func (r *Reloader) onSignal(ctx context.Context, signals <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-signals:
			_ = r.Reload(ctx)
		}
	}
}
