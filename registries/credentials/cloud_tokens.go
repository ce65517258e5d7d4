package credentials

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/image-pin/image-pin-webhook/internal/ctxutil"
	"github.com/image-pin/image-pin-webhook/internal/flight"
	"github.com/image-pin/image-pin-webhook/internal/hold"
)

// cloudTokens caches one credential per source and registry host. The
// CloudRefresher (cloud_refresh.go) refreshes each before it runs out while
// it is used, so that no admission waits for a login while the entry is in
// use; a credential not used since its last refresh is dropped instead, and
// its next use logs in again.
type cloudTokens struct {
	flight flight.Group[tokenKey, *cloudToken]
	mu     sync.Mutex
	logins map[tokenKey]cloudLogin
	tokens map[tokenKey]*cloudToken
	// failed holds a failed login, so that a tenant whose images name the
	// entry cannot make the webhook log in at every lookup while the cloud
	// refuses (and throttles) it.
	failed *hold.Failures[tokenKey, error]
	// stored is signalled (without blocking) when a token is stored, so the
	// refresher looks at when it is due.
	stored chan struct{}
}

// tokenKey is one source at one registry host.
type tokenKey struct {
	src  Source
	host string
}

type cloudToken struct {
	auth       authn.AuthConfig
	refreshAt  time.Time
	validUntil time.Time
	opts       FetchOptions // what the refresh logs in with
	used       bool         // since it was fetched
	refreshing bool         // a refresh of it is under way
	retry      time.Duration
}

func newCloudTokens(hold time.Duration) *cloudTokens {
	return &cloudTokens{logins: map[tokenKey]cloudLogin{}, tokens: map[tokenKey]*cloudToken{},
		failed: newHeldFailures(hold), stored: make(chan struct{}, 1)}
}

func newHeldFailures(d time.Duration) *hold.Failures[tokenKey, error] {
	return hold.New[tokenKey, error](d, maxHeldFailures)
}

// get returns the cached credential of src at host, or logs in. Concurrent
// callers share one login; a caller whose ctx ends stops waiting but the
// login goes on and is cached.
func (c *cloudTokens) get(ctx context.Context, src Source, o FetchOptions) (authn.AuthConfig, error) {
	key := tokenKey{src: src, host: o.Host}
	c.mu.Lock()
	if t, ok := c.tokens[key]; ok && time.Now().Before(t.validUntil) {
		t.used = true
		c.mu.Unlock()
		return t.auth, nil
	}
	c.mu.Unlock()
	if err, held := c.failed.Get(key); held {
		return authn.AuthConfig{}, err
	}
	t, err := c.flight.Do(ctx, key, func() (*cloudToken, error) {
		fctx, cancel := ctxutil.DetachFor(ctx, cloudFetchBound)
		defer cancel()
		return c.fetchStore(fctx, key, o)
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return authn.AuthConfig{}, fmt.Errorf("credentials from %s: %w", src, err)
		}
		return authn.AuthConfig{}, err
	}
	c.mu.Lock()
	t.used = true
	c.mu.Unlock()
	return t.auth, nil
}

// fetchStore logs in and caches the credential. It runs under c.flight, so
// one login per key at a time. A login that failed because ctx ended (the
// process stops) is not held.
func (c *cloudTokens) fetchStore(ctx context.Context, key tokenKey, o FetchOptions) (*cloudToken, error) {
	t, err := c.fetch(ctx, key, o)
	if err != nil {
		if ctx.Err() == nil {
			c.failed.Hold(key, err)
		}
		return nil, err
	}
	c.failed.Forget(key)
	c.mu.Lock()
	c.tokens[key] = t
	c.mu.Unlock()
	select {
	case c.stored <- struct{}{}:
	default: // the refresher has a signal pending already
	}
	return t, nil
}

// fetch logs in once, within ctx.
func (c *cloudTokens) fetch(ctx context.Context, key tokenKey, o FetchOptions) (*cloudToken, error) {
	l, err := c.login(key)
	if err != nil {
		return nil, err
	}
	auth, expires, err := l.login(ctx, key.host)
	if err != nil {
		return nil, fmt.Errorf("credentials from %s: %w", key.src, err)
	}
	now := time.Now()
	if !expires.After(now) {
		return nil, fmt.Errorf("credentials from %s: the cloud gave a credential that expired at %s", key.src, expires.UTC().Format(time.RFC3339))
	}
	t := newCloudToken(auth, now, expires, o.Expire)
	t.opts = o
	return t, nil
}

// newCloudToken works out how long a credential is used: until its expiry
// minus a margin, or credsexpire after the login when that comes first.
func newCloudToken(auth authn.AuthConfig, now, expires time.Time, credsexpire time.Duration) *cloudToken {
	life := expires.Sub(now)
	margin := min(cloudMargin, life/10)
	until := expires.Add(-margin)
	if credsexpire > 0 && now.Add(credsexpire).Before(until) {
		until = now.Add(credsexpire)
	}
	refreshAt := now.Add(time.Duration(float64(until.Sub(now)) * cloudRefreshAt))
	return &cloudToken{auth: auth, refreshAt: refreshAt, validUntil: until, retry: cloudRetryFirst}
}

// login returns the cached login of a source at a host, made on first use:
// it holds the SDK clients, which keep their own caches (AWS STS
// credentials).
func (c *cloudTokens) login(key tokenKey) (cloudLogin, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.logins[key]; ok {
		return l, nil
	}
	opts, err := cloudOptions(key.src.Kind, key.src.Cloud)
	if err != nil {
		return nil, fmt.Errorf("credentials from %s: %w", key.src, err)
	}
	l, err := cloudKinds[key.src.Kind].new(opts, key.host)
	if err != nil {
		return nil, fmt.Errorf("credentials from %s: %w", key.src, err)
	}
	c.logins[key] = l
	return l, nil
}

// invalidate drops the credential after a registry refused it; the next
// caller logs in again.
func (c *cloudTokens) invalidate(src Source, host string) {
	c.mu.Lock()
	delete(c.tokens, tokenKey{src: src, host: host})
	c.mu.Unlock()
}

// cloudAuthenticator returns an authenticator that asks for the credential
// of src on every request. It logs in first (or finds the credential
// cached), so a failed login fails here, before any registry request.
func (c *Cache) cloudAuthenticator(ctx context.Context, src Source, o FetchOptions) (authn.Authenticator, error) {
	if _, err := c.cloud.get(ctx, src, o); err != nil {
		return nil, err
	}
	return cloudAuthenticator{tokens: c.cloud, src: src, opts: o}, nil
}

// cloudAuthenticator asks the cache on every request rather than holding one
// credential, so the per-repository transports the Client keeps pick up a
// refreshed token without being rebuilt.
type cloudAuthenticator struct {
	tokens *cloudTokens
	src    Source
	opts   FetchOptions
}

func (a cloudAuthenticator) Authorization() (*authn.AuthConfig, error) {
	return a.AuthorizationContext(context.Background())
}

func (a cloudAuthenticator) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	cfg, err := a.tokens.get(ctx, a.src, a.opts)
	if err != nil {
		return nil, err
	}
	return &cfg, nil
}
