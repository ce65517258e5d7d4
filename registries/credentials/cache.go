package credentials

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	lru "github.com/hashicorp/golang-lru/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/internal/ctxutil"
	"github.com/image-pin/image-pin-webhook/internal/flight"
	"github.com/image-pin/image-pin-webhook/internal/hold"
)

// Cache fetches and caches the credentials of every source. One lives
// for the whole process, so a script's answer outlives config reloads and the
// admission that asked for it. Docker config Secrets are read in
// dockerconfig.go, scripts run in script.go, cloud logins in cloud.go.
type Cache struct {
	secrets client.Reader // uncached: needs get on the named Secrets only
	lookup  func(string) (string, bool)
	environ func() []string

	flight flight.Group[credKey, cachedCreds]
	mu     sync.Mutex
	cache  map[credKey]cachedCreds

	cloud *cloudTokens
	// dropped is when each source's credential was last dropped, so that
	// a registry refusing it again and again fetches it at most once per
	// refetchInterval.
	dropped         map[credKey]time.Time
	refetchInterval time.Duration
	// failed is each source's last failed fetch, answered from memory for
	// failureHold: a failing ext: script (or Secret read) runs at most once
	// per hold however many lookups any tenant starts.
	failed      *hold.Failures[credKey, error]
	failureHold time.Duration
	log         logr.Logger
	now         func() time.Time // when a script failed, for the log limiter
	// scripts is how each ext: script last failed, for the operator.
	scripts scriptFailures
	// decoded holds pull Secrets read for imagepullsecrets entries, by
	// namespace/name/resourceVersion, so each version is decoded once.
	decoded *lru.Cache[string, pulledSecret]
}

// credKey keys what the cache holds of a source: the source itself, and the
// registry host for a pullsecret: source, whose docker config holds an entry
// per host.
type credKey struct {
	src  Source
	host string
}

func keyOf(src Source, host string) credKey {
	if src.Kind == KindPullSecret {
		return credKey{src: src, host: host}
	}
	return credKey{src: src}
}

type cachedCreds struct {
	auth    authn.AuthConfig
	scoped  []scopedAuth // a pull secret's entries for the host, most specific first
	expires time.Time    // zero: until restart
}

// Option configures New.
type Option func(*Cache)

// WithFailureHold sets how long a failed fetch is answered from memory.
func WithFailureHold(d time.Duration) Option {
	return func(c *Cache) { c.failureHold = d }
}

// WithRefetchInterval sets how soon a refused credential may be fetched again.
func WithRefetchInterval(d time.Duration) Option {
	return func(c *Cache) { c.refetchInterval = d }
}

// WithLogger sets where a failed ext: script is logged (its exit status and
// last stderr line, redacted, at the default level; its whole stderr,
// redacted, at debug level): never into a warning or a denial.
func WithLogger(l logr.Logger) Option {
	return func(c *Cache) { c.log = l }
}

// WithSecretReader sets the client Secrets are read with (an uncached
// reader, such as the manager's APIReader).
func WithSecretReader(r client.Reader) Option {
	return func(c *Cache) { c.secrets = r }
}

// WithEnvironment replaces the process environment, for tests.
func WithEnvironment(env []string) Option {
	return func(c *Cache) {
		c.environ = func() []string { return env }
		c.lookup = func(k string) (string, bool) {
			for _, kv := range env {
				if name, v, ok := strings.Cut(kv, "="); ok && name == k {
					return v, true
				}
			}
			return "", false
		}
	}
}

// New makes the process-wide credential cache. Cloud credentials (aws,
// gcp, azure) are refreshed in the background only while its
// CloudRefresher runs.
func New(opts ...Option) *Cache {
	c := &Cache{lookup: os.LookupEnv, environ: os.Environ, cache: map[credKey]cachedCreds{},
		dropped: map[credKey]time.Time{}, refetchInterval: DefaultRefetchInterval, log: logr.Discard(),
		failureHold: DefaultFailureHold, now: time.Now, scripts: newScriptFailures()}
	c.decoded, _ = lru.New[string, pulledSecret](maxDecodedSecrets)
	for _, o := range opts {
		o(c)
	}
	c.failed = hold.New[credKey, error](c.failureHold, maxHeldFailures)
	c.cloud = newCloudTokens(c.failureHold)
	return c
}

// FetchOptions is what a fetch needs to know about the entry that asks.
type FetchOptions struct {
	Host       string        // the registry host, to pick the right auths entry of a pull secret
	Repository string        // the repository path at Host, for path-scoped auths keys
	Expire     time.Duration // credsexpire; 0 caches until restart
	Timeout    time.Duration // credstimeout, for ext: scripts
	HiddenEnv  []string      // variables named by env: sources, kept from ext: scripts
}

// GetUntil returns the credentials of src, from the cache while they are
// fresh, and until when they may be used (zero: until a restart), so that
// what holds them can honour credsexpire. Concurrent calls for one source
// share one fetch. The fetch runs detached from ctx so that a script's
// answer is cached even when ctx ends first.
func (c *Cache) GetUntil(ctx context.Context, src Source, o FetchOptions) (authn.AuthConfig, time.Time, error) {
	if src.Kind.IsCloud() {
		auth, err := c.cloud.get(ctx, src, o)
		return auth, time.Time{}, err
	}
	key := keyOf(src, o.Host)
	c.mu.Lock()
	cc, ok := c.cache[key]
	c.mu.Unlock()
	if ok && (cc.expires.IsZero() || time.Now().Before(cc.expires)) {
		return cc.pick(o.Repository), cc.expires, nil
	}
	if err, held := c.failed.Get(key); held {
		return authn.AuthConfig{}, time.Time{}, err
	}
	cc, err := c.flight.Do(ctx, key, func() (cachedCreds, error) {
		fctx, cancel := ctxutil.DetachFor(ctx, fetchBound(src, o))
		defer cancel()
		cc, err := c.fetch(fctx, src, o)
		if err != nil {
			c.failed.Hold(key, err)
			return cc, err
		}
		if o.Expire > 0 {
			cc.expires = time.Now().Add(o.Expire)
		}
		c.mu.Lock()
		c.cache[key] = cc
		c.mu.Unlock()
		c.failed.Forget(key)
		return cc, nil
	})
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("credentials from %s: %w", src, err)
	}
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	return cc.pick(o.Repository), cc.expires, nil
}

// Authenticator returns the credentials of src for a repository path and
// until when they may be used (zero: until a restart). A cloud source's
// authenticator asks the token cache at every use, so what holds it never
// outlives a token: no expiry is given for it.
func (c *Cache) Authenticator(ctx context.Context, src Source, o FetchOptions) (authn.Authenticator, time.Time, error) {
	if src.Kind.IsCloud() {
		a, err := c.cloudAuthenticator(ctx, src, o)
		return a, time.Time{}, err
	}
	cfg, expires, err := c.GetUntil(ctx, src, o)
	if err != nil {
		return nil, time.Time{}, err
	}
	return authn.FromConfig(cfg), expires, nil
}

// fetchBound keeps a detached fetch from outliving its purpose.
func fetchBound(src Source, o FetchOptions) time.Duration {
	if src.Kind == KindExt {
		if o.Timeout > 0 {
			return o.Timeout
		}
		return DefaultCredsTimeout
	}
	return secretReadBound
}

// Invalidate drops the cached credentials of src, after a registry refused
// them, and reports whether it did: within refetchInterval of the last drop
// it keeps them, so a registry that keeps refusing costs one fetch per
// interval rather than one per request.
func (c *Cache) Invalidate(src Source, host string) bool {
	key := keyOf(src, host)
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.dropped[key]; ok && time.Since(last) < c.refetchInterval {
		return false
	}
	c.dropped[key] = time.Now()
	delete(c.cache, key)
	if src.Kind.IsCloud() {
		c.cloud.invalidate(src, host)
	}
	return true
}

func (c *Cache) fetch(ctx context.Context, src Source, o FetchOptions) (cachedCreds, error) {
	if src.Kind == KindPullSecret {
		s, err := c.secret(ctx, src)
		if err != nil {
			return cachedCreds{}, err
		}
		scoped, err := pullSecretAuths(s, o.Host, src)
		return cachedCreds{scoped: scoped}, err
	}
	auth, err := c.fetchOne(ctx, src, o)
	return cachedCreds{auth: auth}, err
}

func (c *Cache) fetchOne(ctx context.Context, src Source, o FetchOptions) (authn.AuthConfig, error) {
	switch src.Kind {
	case KindEnv:
		v, ok := c.lookup(src.Var)
		if !ok || v == "" {
			return authn.AuthConfig{}, fmt.Errorf("credentials from %s: variable is not set", src)
		}
		return parseUserPass(v, src)
	case KindSecret:
		s, err := c.secret(ctx, src)
		if err != nil {
			return authn.AuthConfig{}, err
		}
		v, ok := s.Data[src.Key]
		if !ok {
			return authn.AuthConfig{}, fmt.Errorf("credentials from %s: the secret has no key %q", src, src.Key)
		}
		return parseUserPass(string(v), src)
	case KindExt:
		return c.runScript(ctx, src, o)
	}
	return authn.AuthConfig{}, fmt.Errorf("credentials: unknown source kind %q", src.Kind)
}

func (c *Cache) secret(ctx context.Context, src Source) (*corev1.Secret, error) {
	if c.secrets == nil {
		return nil, fmt.Errorf("credentials from %s: no Kubernetes client to read Secrets with", src)
	}
	var s corev1.Secret
	if err := c.secrets.Get(ctx, types.NamespacedName{Namespace: src.Namespace, Name: src.Name}, &s); err != nil {
		return nil, fmt.Errorf("credentials from %s: reading the secret: %w", src, err)
	}
	return &s, nil
}

// parseUserPass reads user:pass, as every source but pullsecret gives it;
// a value without a colon is taken as a registry token.
func parseUserPass(v string, src Source) (authn.AuthConfig, error) {
	v = strings.TrimRight(v, "\r\n")
	if v == "" {
		return authn.AuthConfig{}, fmt.Errorf("credentials from %s: empty", src)
	}
	if strings.ContainsAny(v, "\r\n") {
		return authn.AuthConfig{}, fmt.Errorf("credentials from %s: more than one line", src)
	}
	user, pass, ok := strings.Cut(v, ":")
	if !ok {
		return authn.AuthConfig{RegistryToken: v}, nil
	}
	if user == "" {
		return authn.AuthConfig{}, fmt.Errorf("credentials from %s: empty user name before the colon", src)
	}
	return authn.AuthConfig{Username: user, Password: pass}, nil
}
