package credentials

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// fakeLogin issues a credential valid for life at every login and counts
// them; it makes no request, so it runs inside a synctest bubble.
type fakeLogin struct {
	mu     sync.Mutex
	life   time.Duration
	logins int
}

func (l *fakeLogin) login(context.Context, string) (authn.AuthConfig, time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logins++
	return authn.AuthConfig{Username: "AWS", Password: "token"}, time.Now().Add(l.life), nil
}

func (l *fakeLogin) count() int { l.mu.Lock(); defer l.mu.Unlock(); return l.logins }

// cacheWithLogin is a cache whose aws source at host logs in with l.
func cacheWithLogin(l cloudLogin, host string) (*Cache, Source) {
	c := New(WithFailureHold(0))
	src := Source{Kind: KindAWS, Cloud: "region=eu-west-1"}
	c.cloud.logins[tokenKey{src: src, host: host}] = l
	return c, src
}

// On the fake clock: a 4s token is used for 3.6s (a tenth of its life as
// margin) and refreshed after 2.7s, so in 6s of use there are 3 logins (at
// 0, 2.7s and 5.4s), and no lookup ever waits for one.
func TestACloudTokenIsRefreshedBeforeItExpiresAndNoCallerWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLogin{life: 4 * time.Second}
		c, src := cacheWithLogin(l, "r.example")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = c.CloudRefresher().Start(ctx) }()
		o := FetchOptions{Host: "r.example"}
		if _, err := c.cloud.get(ctx, src, o); err != nil {
			t.Fatal(err)
		}
		var slowest time.Duration
		lookups := 0
		for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			synctest.Wait() // a refresh due now has run
			start := time.Now()
			if _, err := c.cloud.get(ctx, src, o); err != nil {
				t.Fatal(err)
			}
			slowest = max(slowest, time.Since(start))
			lookups++
		}
		if n := l.count(); n < 2 || n > 3 {
			t.Errorf("%d logins in 6s of 4s tokens, want 2 or 3 (one per window)", n)
		}
		if lookups < 100 {
			t.Errorf("only %d lookups ran", lookups)
		}
		if slowest != 0 {
			t.Errorf("the slowest lookup took %s: a caller waited for a login", slowest)
		}
		cancel()
		<-done
	})
}

// A token nobody used since it was fetched is dropped at its refresh time
// rather than refreshed: an entry that went quiet costs no logins.
func TestAnUnusedCloudTokenIsDroppedNotRefreshed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLogin{life: 4 * time.Second}
		c, src := cacheWithLogin(l, "r.example")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = c.CloudRefresher().Start(ctx) }()
		o := FetchOptions{Host: "r.example"}
		if _, err := c.cloud.get(ctx, src, o); err != nil {
			t.Fatal(err)
		}
		// Used once more, before the first refresh: it is refreshed once.
		time.Sleep(time.Second)
		if _, err := c.cloud.get(ctx, src, o); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := l.count(); n != 2 {
			t.Errorf("%d logins, want 2: the login and one refresh, then nothing while unused", n)
		}
		c.cloud.mu.Lock()
		left := len(c.cloud.tokens)
		c.cloud.mu.Unlock()
		if left != 0 {
			t.Errorf("%d tokens kept for an entry nobody uses", left)
		}
		cancel()
		<-done
	})
}

// The refresher stops with its context and leaves no goroutine behind (the
// bubble would not end otherwise).
func TestTheCloudRefresherStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLogin{life: time.Hour}
		c, src := cacheWithLogin(l, "r.example")
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- c.CloudRefresher().Start(ctx) }()
		if _, err := c.cloud.get(ctx, src, FetchOptions{Host: "r.example"}); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Start = %v, want nil", err)
		}
	})
}
