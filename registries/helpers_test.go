package registries_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
)

// Secrets, scripts and sources come from credtest, shared with package
// credentials' own tests.

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// source parses a credentials field as the config does.
func source(t testing.TB, s string) *credentials.Source {
	t.Helper()
	src := credtest.Source(t, s)
	return &src
}

// get is what the cache gives a lookup, without its expiry.
func get(ctx context.Context, c *credentials.Cache, src credentials.Source, o credentials.FetchOptions) (authn.AuthConfig, error) {
	auth, _, err := c.GetUntil(ctx, src, o)
	return auth, err
}

// startRefresher runs c's cloud refresher, as the manager does, until the
// returned stop (or the test's end), which waits for it to return.
func startRefresher(t testing.TB, c *credentials.Cache) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.CloudRefresher().Start(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}
