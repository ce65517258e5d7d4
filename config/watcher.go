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
	path    string
	opts    []registries.SetOption
	current atomic.Pointer[Config]
	mu      sync.Mutex // guards raw and subs, and serialises reloads
	raw     []byte
	log     logr.Logger
	reloads *prometheus.CounterVec
	subs    map[chan struct{}]struct{} // guarded by mu
	poll    time.Duration

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

// WithPollInterval sets how often the file is re-read even without a file
// event, as a safety net for file systems that send none (default
// DefaultPollInterval).
func WithPollInterval(d time.Duration) WatcherOption { return func(w *Watcher) { w.poll = d } }

// NewWatcher loads path; an invalid config is an error (exit at start).
func NewWatcher(path string, setOpts []registries.SetOption, opts ...WatcherOption) (*Watcher, error) {
	w := &Watcher{path: path, opts: setOpts, log: logr.Discard(), poll: DefaultPollInterval, minBackoff: minReloadBackoff, maxBackoff: maxReloadBackoff}
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

// Registries is the registries of the config in force.
func (w *Watcher) Registries() *registries.Set { return w.Current().Registries }

// Subscribe returns a channel that receives after each reload that puts a
// new config in force (not the first load), and a function that ends the
// subscription. Reloads a subscriber has not yet received coalesce into one:
// it reads Current for the latest, and a slow subscriber never holds up a
// reload.
func (w *Watcher) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs == nil {
		w.subs = map[chan struct{}]struct{}{}
	}
	w.subs[ch] = struct{}{}
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.subs, ch)
	}
}

// NeedLeaderElection is false: every replica answers admissions with the
// config in force, so every replica reloads it.
func (w *Watcher) NeedLeaderElection() bool { return false }

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
			debounce = time.After(reloadDebounce)
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
		w.failed(err, false)
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
		w.failed(err, again)
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
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default: // one is pending already
		}
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

// failed counts a failed reload and logs it (the binary's logger prints no
// stack trace for it: the error names the file, entry and field). A retry of the same content that fails again is logged at
// debug level only: the first line said it all.
func (w *Watcher) failed(err error, again bool) {
	if w.reloads != nil {
		w.reloads.WithLabelValues("failure").Inc()
	}
	const msg = "config reload failed; the last good config stays in force"
	if again {
		w.log.V(1).Info(msg, "path", w.path, "error", err.Error())
		return
	}
	w.log.Error(err, msg, "path", w.path)
}

// WithRetryBackoff sets how soon a failed reload is tried again, doubling
// from min to max (default 1s to 5m).
func WithRetryBackoff(min, max time.Duration) WatcherOption {
	return func(w *Watcher) { w.minBackoff, w.maxBackoff = min, max }
}
