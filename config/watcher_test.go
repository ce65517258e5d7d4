package config_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/config"
)

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
	changed := make(chan *config.Config, 1)
	w, err := config.NewWatcher(filepath.Join(dir, "config.yaml"), nil,
		config.WithOnChange(func(c *config.Config) { changed <- c }),
		config.WithPollInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(100 * time.Millisecond) // let the watch start

	mkVersion("..v2", "report")
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changed:
		if c.Policy.Mode != config.ModeReport || w.Current() != c {
			t.Errorf("after the swap mode = %s", w.Current().Policy.Mode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the symlink swap was not noticed")
	}
}
