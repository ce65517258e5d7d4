package config_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/config"
)

// startWatcher runs a watcher of path until the test ends and subscribes to
// its reloads, once the watch has had time to start.
func startWatcher(t *testing.T, path string, opts ...config.WatcherOption) (*config.Watcher, <-chan struct{}) {
	t.Helper()
	w, err := config.NewWatcher(path, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	changed, unsubscribe := w.Subscribe()
	t.Cleanup(unsubscribe)
	time.Sleep(100 * time.Millisecond) // let the watch start
	return w, changed
}

// TestTheWatcherFollowsAConfigMapSymlinkSwap lays the file out as the
// kubelet does (config.yaml → ..data/config.yaml, ..data → ..2026_x) and
// swaps ..data atomically.
func TestTheWatcherFollowsAConfigMapSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	mkVersion := func(name, mode string) {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "config.yaml"), "policy:\n  mode: "+mode+"\n")
	}
	mkVersion("..v1", "pin")
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/config.yaml", filepath.Join(dir, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	w, changed := startWatcher(t, filepath.Join(dir, "config.yaml"), config.WithPollInterval(time.Hour))

	mkVersion("..v2", "report")
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
		if w.Current().Policy.Mode != config.ModeReport {
			t.Errorf("after the swap mode = %s", w.Current().Policy.Mode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the symlink swap was not noticed")
	}
}

func TestEverySubscriberHearsOfAReloadOnceAndAnEndedSubscriptionNoMore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, "policy:\n  mode: pin\n")
	w, err := config.NewWatcher(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, cancelA := w.Subscribe()
	defer cancelA()
	b, cancelB := w.Subscribe()
	gone, cancelGone := w.Subscribe()
	cancelGone()

	// Two reloads that nobody has read yet: neither blocks, and each
	// subscriber hears of them once.
	for _, mode := range []string{"report", "pin"} {
		writeFile(t, path, "policy:\n  mode: "+mode+"\n")
		if !w.Reload() {
			t.Fatalf("the change to mode %s did not take effect", mode)
		}
	}
	for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
		select {
		case <-ch:
		default:
			t.Errorf("subscriber %s did not hear of the reloads", name)
		}
		select {
		case <-ch:
			t.Errorf("subscriber %s heard of two reloads twice; want them coalesced", name)
		default:
		}
	}
	select {
	case <-gone:
		t.Error("an ended subscription still heard of a reload")
	default:
	}

	cancelB()
	if w.Reload() {
		t.Fatal("an unchanged file was reloaded")
	}
	select {
	case <-a:
		t.Error("a read of an unchanged file was announced as a reload")
	default:
	}
}
