package config

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/image-pin/image-pin-webhook/registries"
)

// Watcher holds the config in force and reloads it when its file changes,
// including a Kubernetes ConfigMap's ..data symlink swap. A bad new config is
// logged and counted, and the last good one stays in force.
type Watcher struct {
	path     string
	opts     []registries.SetOption
	current  atomic.Pointer[Config]
	mu       sync.Mutex // guards raw and serialises reloads
	raw      []byte
	log      logr.Logger
	reloads  *prometheus.CounterVec
	onChange func(*Config)
	poll     time.Duration

	// A reload can fail for a reason outside the file (a ca_file whose
	// Secret is not mounted yet), so a failed file is tried again with
	// backoff rather than only when it changes.
	failedRaw              []byte
	retryAt                time.Time
	backoff                time.Duration
	minBackoff, maxBackoff time.Duration
}

// WatcherOption configures a Watcher.
type WatcherOption func(*Watcher)

// WithWatcherLogger sets the logger.
func WithWatcherLogger(l logr.Logger) WatcherOption { return func(w *Watcher) { w.log = l } }

// WithReloadMetrics registers image_pin_config_reloads_total with reg.
func WithReloadMetrics(reg prometheus.Registerer) WatcherOption {
	return func(w *Watcher) {
		w.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "image_pin_config_reloads_total",
			Help: "Config reloads by result (success, failure).",
		}, []string{"result"})
		reg.MustRegister(w.reloads)
		// Both series exist from the start, so an alert on failures sees a zero.
		w.reloads.WithLabelValues("success")
		w.reloads.WithLabelValues("failure")
	}
}

// WithOnChange calls f after each successful reload (not the first load).
func WithOnChange(f func(*Config)) WatcherOption { return func(w *Watcher) { w.onChange = f } }

// WithPollInterval sets how often the file is re-read even without a file
// event, as a safety net for file systems that send none (default 30s).
func WithPollInterval(d time.Duration) WatcherOption { return func(w *Watcher) { w.poll = d } }

// NewWatcher loads path; an invalid config is an error (exit at start).
func NewWatcher(path string, setOpts []registries.SetOption, opts ...WatcherOption) (*Watcher, error) {
	w := &Watcher{path: path, opts: setOpts, log: logr.Discard(), poll: 30 * time.Second, minBackoff: time.Second, maxBackoff: 5 * time.Minute}
	for _, o := range opts {
		o(w)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Load(path, setOpts...)
	if err != nil {
		return nil, err
	}
	w.raw = raw
	w.current.Store(c)
	return w, nil
}

// Current is the config in force: a consistent snapshot.
func (w *Watcher) Current() *Config { return w.current.Load() }

// Start watches until ctx ends; it is a controller-runtime Runnable.
func (w *Watcher) Start(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	// Watch the directory: a ConfigMap update replaces a symlink, which a
	// watch on the file itself would not see.
	if err := fw.Add(filepath.Dir(w.path)); err != nil {
		return err
	}
	tick := time.NewTicker(w.poll)
	defer tick.Stop()
	var debounce, retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-fw.Events:
			debounce = time.After(100 * time.Millisecond)
			continue
		case err := <-fw.Errors:
			w.log.Error(err, "watching the config file", "path", w.path)
			continue
		case <-debounce:
		case <-tick.C:
		case <-retry:
		}
		w.Reload()
		retry = w.nextRetry()
	}
}

// Reload re-reads the file and swaps the config in when it changed and is
// valid. It reports whether a new config took effect.
func (w *Watcher) Reload() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	raw, err := os.ReadFile(w.path)
	if err != nil {
		w.failed(err)
		return false
	}
	if bytes.Equal(raw, w.raw) {
		return false
	}
	again := bytes.Equal(raw, w.failedRaw)
	if again && time.Now().Before(w.retryAt) {
		return false // reported already; tried again after the backoff
	}
	spec, err := Decode(raw)
	var c *Config
	if err == nil {
		c, err = Build(spec, w.opts...)
	}
	if err != nil {
		w.failed(err)
		if again {
			w.backoff = min(2*w.backoff, w.maxBackoff)
		} else {
			w.backoff = w.minBackoff
		}
		w.failedRaw, w.retryAt = raw, time.Now().Add(w.backoff)
		return false
	}
	w.raw, w.failedRaw = raw, nil
	old := w.current.Swap(c)
	old.Registries.CloseIdleConnections()
	if w.reloads != nil {
		w.reloads.WithLabelValues("success").Inc()
	}
	w.log.Info("config reloaded", "path", w.path, "registries", len(c.Registries.Entries()))
	if w.onChange != nil {
		w.onChange(c)
	}
	return true
}

// nextRetry fires when a failed reload is due to be tried again; nil when
// none failed.
func (w *Watcher) nextRetry() <-chan time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failedRaw == nil {
		return nil
	}
	return time.After(time.Until(w.retryAt))
}

func (w *Watcher) failed(err error) {
	if w.reloads != nil {
		w.reloads.WithLabelValues("failure").Inc()
	}
	w.log.Error(err, "config reload failed; the last good config stays in force", "path", w.path)
}

// WithRetryBackoff sets how soon a failed reload is tried again, doubling
// from min to max (default 1s to 5m).
func WithRetryBackoff(min, max time.Duration) WatcherOption {
	return func(w *Watcher) { w.minBackoff, w.maxBackoff = min, max }
}
