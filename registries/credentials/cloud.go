package credentials

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/sync/singleflight"
)

// cloudLogin turns the workload identity of the pod the webhook runs in into
// a registry credential, as the cloud's own login command (aws ecr
// get-login-password, gcloud auth print-access-token, az acr login) would.
// Each cloud lives in its own file (cloud_aws.go, cloud_gcp.go,
// cloud_azure.go); this file caches and refreshes what they return.
type cloudLogin interface {
	// login returns the credential for the registry at host and the time the
	// cloud says it stops being valid.
	login(ctx context.Context, host string) (authn.AuthConfig, time.Time, error)
}

// cloudKinds are the credential kinds that log in with a workload identity,
// each with the options its source may carry after the colon.
var cloudKinds = map[string]struct {
	options []string
	new     func(opts map[string]string, host string) (cloudLogin, error)
}{
	"aws":   {options: []string{"region"}, new: newAWSLogin},
	"gcp":   {new: newGCPLogin},
	"azure": {options: []string{"tenant", "client", "allowhost"}, new: newAzureLogin},
}

func isCloudKind(kind string) bool { _, ok := cloudKinds[kind]; return ok }

// Check checks, when the config is read, that the source can serve the
// registry at host: a cloud source must know what it needs from the host
// and its options (an aws: entry on a host that is not ECR-shaped needs
// region=). It does no I/O.
func (src Source) Check(host string) error {
	if !isCloudKind(src.Kind) {
		return nil
	}
	opts, err := cloudOptions(src.Kind, src.Cloud)
	if err != nil {
		return err
	}
	_, err = cloudKinds[src.Kind].new(opts, host)
	return err
}

// cloudOptions parses the part after aws:, gcp: or azure:, a comma-separated
// list of key=value. Errors name the key, never the value.
func cloudOptions(kind, rest string) (map[string]string, error) {
	known := cloudKinds[kind].options
	opts := map[string]string{}
	if rest == "" {
		return opts, nil
	}
	for _, kv := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("%s: options must be key=value separated by commas, e.g. %s", kind, cloudExample(kind))
		}
		found := false
		for _, o := range known {
			found = found || o == k
		}
		if !found && len(known) == 0 {
			return nil, fmt.Errorf("%s: takes no options, unknown option %q", kind, k)
		}
		if !found {
			return nil, fmt.Errorf("%s: unknown option %q: must be one of %s", kind, k, strings.Join(known, ", "))
		}
		if _, dup := opts[k]; dup {
			return nil, fmt.Errorf("%s: option %q given twice", kind, k)
		}
		if strings.ContainsAny(v, " \t#/:") {
			return nil, fmt.Errorf("%s: option %q must not hold a space, slash, colon or #", kind, k)
		}
		opts[k] = v
	}
	return opts, nil
}

func cloudExample(kind string) string {
	switch kind {
	case "aws":
		return "aws:region=eu-west-1"
	case "azure":
		return "azure:tenant=TENANT-ID,client=CLIENT-ID"
	}
	return kind + ":"
}

// Defaults of the cloud token cache.
const (
	// cloudMargin is how long before the cloud's own expiry a token stops
	// being used, so a request sent just before expiry is not refused in
	// flight. Short-lived tokens use a tenth of their life instead.
	cloudMargin = 5 * time.Minute
	// cloudRefreshAt is the part of a token's usable life after which the
	// background refresh starts, leaving the last quarter for retries.
	cloudRefreshAt = 0.75
	// cloudFetchBound bounds one login (token file, STS, token endpoint).
	cloudFetchBound = 30 * time.Second
	// cloudRetryMax bounds the wait between failed background refreshes.
	cloudRetryMax = 30 * time.Second
)

// cloudTokens caches one credential per source and registry host and
// refreshes it in the background before it runs out, so that no admission
// waits for a login while the entry is in use. A refresher goroutine runs per
// cached credential only while the credential was used since its last
// refresh: an entry that went quiet (or left the config) stops refreshing and
// is dropped, and its next use logs in again.
type cloudTokens struct {
	ctx    context.Context // the process: refreshers stop with it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	now    func() time.Time

	flight     singleflight.Group
	mu         sync.Mutex
	logins     map[string]cloudLogin
	tokens     map[string]*cloudToken
	refreshers map[string]bool // keys a refresh goroutine looks after
	// failed holds a failed login for hold, so that a tenant whose images
	// name the entry cannot make the webhook log in at every lookup while
	// the cloud refuses (and throttles) it.
	failed map[string]failedFetch
	hold   time.Duration
}

type cloudToken struct {
	auth       authn.AuthConfig
	refreshAt  time.Time
	validUntil time.Time
	used       bool // since it was fetched
}

func newCloudTokens(parent context.Context, hold time.Duration) *cloudTokens {
	ctx, cancel := context.WithCancel(parent)
	return &cloudTokens{ctx: ctx, cancel: cancel, now: time.Now, logins: map[string]cloudLogin{},
		tokens: map[string]*cloudToken{}, refreshers: map[string]bool{}, failed: map[string]failedFetch{}, hold: hold}
}

// close stops the refreshers and waits for them.
func (c *cloudTokens) close() {
	c.mu.Lock()
	c.cancel() // under mu: no refresher starts after this
	c.mu.Unlock()
	c.wg.Wait()
}

func cloudKey(src Source, host string) string { return src.String() + "|" + host }

// get returns the cached credential of src at host, or logs in. Concurrent
// callers share one login; a caller whose ctx ends stops waiting but the
// login goes on and is cached.
func (c *cloudTokens) get(ctx context.Context, src Source, o FetchOptions) (authn.AuthConfig, error) {
	key := cloudKey(src, o.Host)
	c.mu.Lock()
	if t, ok := c.tokens[key]; ok && c.now().Before(t.validUntil) {
		t.used = true
		c.mu.Unlock()
		return t.auth, nil
	}
	if f, ok := c.failed[key]; ok && c.now().Sub(f.at) < c.hold {
		c.mu.Unlock()
		return authn.AuthConfig{}, f.err
	}
	c.mu.Unlock()
	ch := c.flight.DoChan(key, func() (any, error) { return c.fetchStore(key, src, o) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return authn.AuthConfig{}, r.Err
		}
		t := r.Val.(*cloudToken)
		c.mu.Lock()
		t.used = true
		c.mu.Unlock()
		return t.auth, nil
	case <-ctx.Done():
		return authn.AuthConfig{}, fmt.Errorf("credentials from %s: %w", src, ctx.Err())
	}
}

// fetchStore logs in, caches the credential and makes sure a refresher
// looks after it. It runs under c.flight, so one login per key at a time.
func (c *cloudTokens) fetchStore(key string, src Source, o FetchOptions) (*cloudToken, error) {
	t, err := c.fetch(src, o)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.ctx.Err() == nil {
			c.failed[key] = failedFetch{err: err, at: c.now()}
		}
		return nil, err
	}
	delete(c.failed, key)
	c.tokens[key] = t
	if !c.refreshers[key] && c.ctx.Err() == nil {
		c.refreshers[key] = true
		c.wg.Add(1)
		go c.refresh(key, src, o)
	}
	return t, nil
}

// fetch logs in once, bounded by cloudFetchBound and the process.
func (c *cloudTokens) fetch(src Source, o FetchOptions) (*cloudToken, error) {
	ctx, cancel := context.WithTimeout(c.ctx, cloudFetchBound)
	defer cancel()
	l, err := c.login(src, o.Host)
	if err != nil {
		return nil, err
	}
	auth, expires, err := l.login(ctx, o.Host)
	if err != nil {
		return nil, fmt.Errorf("credentials from %s: %w", src, err)
	}
	now := c.now()
	if !expires.After(now) {
		return nil, fmt.Errorf("credentials from %s: the cloud gave a credential that expired at %s", src, expires.UTC().Format(time.RFC3339))
	}
	return newCloudToken(auth, now, expires, o.Expire), nil
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
	return &cloudToken{auth: auth, refreshAt: refreshAt, validUntil: until}
}

// login returns the cached login of src at host, made on first use: it holds
// the SDK clients, which keep their own caches (AWS STS credentials).
func (c *cloudTokens) login(src Source, host string) (cloudLogin, error) {
	key := cloudKey(src, host)
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.logins[key]; ok {
		return l, nil
	}
	opts, err := cloudOptions(src.Kind, src.Cloud)
	if err != nil {
		return nil, fmt.Errorf("credentials from %s: %w", src, err)
	}
	l, err := cloudKinds[src.Kind].new(opts, host)
	if err != nil {
		return nil, fmt.Errorf("credentials from %s: %w", src, err)
	}
	c.logins[key] = l
	return l, nil
}

// refresh keeps the credential of key fresh while it is used. It returns
// when the process stops; when the credential was not used since it was
// fetched or was invalidated (the key is dropped, so the entry's next use
// logs in again); or when refreshing failed until the credential ran out
// (dropped too, so the next caller logs in itself and sees the error).
func (c *cloudTokens) refresh(key string, src Source, o FetchOptions) {
	defer c.wg.Done()
	retry := time.Second
	for {
		c.mu.Lock()
		t, ok := c.tokens[key]
		if !ok {
			delete(c.refreshers, key)
			c.mu.Unlock()
			return
		}
		wait := t.refreshAt.Sub(c.now())
		c.mu.Unlock()
		if !c.sleep(wait) {
			return
		}
		c.mu.Lock()
		if cur, ok := c.tokens[key]; !ok || cur != t {
			c.mu.Unlock()
			continue // invalidated or replaced meanwhile: look again
		}
		if !t.used {
			delete(c.tokens, key)
			delete(c.refreshers, key)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		_, err, _ := c.flight.Do(key, func() (any, error) { return c.fetchStore(key, src, o) })
		if err == nil {
			retry = time.Second
			continue
		}
		c.mu.Lock()
		if cur, ok := c.tokens[key]; ok && cur == t {
			left := t.validUntil.Sub(c.now())
			if left <= 0 {
				delete(c.tokens, key)
				delete(c.refreshers, key)
				c.mu.Unlock()
				return
			}
			t.refreshAt = c.now().Add(min(retry, left/2))
			retry = min(2*retry, cloudRetryMax)
		}
		c.mu.Unlock()
	}
}

// sleep waits d, or until the process stops (false).
func (c *cloudTokens) sleep(d time.Duration) bool {
	if d <= 0 {
		return c.ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// invalidate drops the credential after a registry refused it; the next
// caller logs in again.
func (c *cloudTokens) invalidate(src Source, host string) {
	c.mu.Lock()
	delete(c.tokens, cloudKey(src, host))
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
