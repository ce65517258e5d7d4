package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/image-pin/image-pin-webhook/internal/ctxutil"
	"github.com/image-pin/image-pin-webhook/internal/flight"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// Client talks to one registry entry: one connection pool, one rate limit,
// and one authenticated transport per repository, reused so that bearer
// tokens and connections are reused. Tokens are scoped per repository, which
// is why transports are kept per repository rather than one per entry.
type Client struct {
	cfg      Config
	source   *credentials.Source // nil: anonymous
	identity Identity

	creds     *credentials.Cache
	hiddenEnv []string
	base      http.RoundTripper
	metrics   *Metrics

	flight     flight.Group[transportCall, http.RoundTripper]
	transports *lru.Cache[transportKey, cachedTransport]
	pool       *http.Transport
}

// Option configures New.
type Option func(*options)

type options struct {
	creds     *credentials.Cache
	metrics   *Metrics
	hiddenEnv []string
}

// WithCredentials sets the process-wide credential cache the client fetches
// its credentials from.
func WithCredentials(c *credentials.Cache) Option { return func(o *options) { o.creds = c } }

// WithMetrics sets where registry requests are counted.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// WithHiddenEnv names the variables (those of env: credential sources) that
// ext: credential scripts must not see.
func WithHiddenEnv(vars []string) Option { return func(o *options) { o.hiddenEnv = vars } }

// New makes the client of the registry cfg describes; cfg is validated
// (api_url set, limit positive). The transport is stacked as every request
// goes through it, outermost first:
//  1. retry 408, 429 and 5xx answers (those go-containerregistry retries),
//     with jittered backoff, while the deadline leaves room;
//  2. wait for the registry's rate limit, shared fairly among tenants;
//  3. count the request by status code;
//  4. use api_url's scheme for the registry's host;
//  5. the connection pool, with the registry's TLS settings.
//
// Authentication (ping, token, Basic) wraps this stack per repository.
func New(cfg Config, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	pool, err := baseTransport(&cfg)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = &schemeTransport{host: cfg.Host(), scheme: cfg.APIURL.Scheme, next: pool}
	rt = &countTransport{registry: cfg.Name, metrics: o.metrics, next: rt}
	rt = &limitTransport{limiter: newFairLimiter(rate.NewLimiter(rate.Limit(cfg.Limit), cfg.Limit)), next: rt}
	rt = &retryTransport{attempts: retryAttempts, backoff: retryBackoff, jitter: retryJitter, maxWait: retryMaxWait, next: rt}
	cache, _ := lru.New[transportKey, cachedTransport](maxRepoTransports)
	return &Client{cfg: cfg, source: cfg.Credentials, identity: cfg.Identity(), creds: o.creds, hiddenEnv: o.hiddenEnv, base: rt, metrics: o.metrics, transports: cache, pool: pool}, nil
}

// Identity is the registry's identity, which scopes every answer obtained
// through the client.
func (c *Client) Identity() Identity { return c.identity }

// CloseIdleConnections closes the idle connections of the client's pool,
// when a config reload replaces it (in-flight requests finish).
func (c *Client) CloseIdleConnections() { c.pool.CloseIdleConnections() }

// UsesPullSecrets reports whether the entry's credentials are the admitted
// object's own pull secrets (imagepullsecrets): its lookups need them, see
// DoWith.
func (c *Client) UsesPullSecrets() bool {
	return c.source != nil && c.source.Kind == credentials.KindImagePullSecrets
}

// ReadPullSecrets reads the pull secrets w presents, through the client's
// credential cache (see credentials.Cache.ReadPullSecrets).
func (c *Client) ReadPullSecrets(ctx context.Context, w credentials.Workload) (*credentials.PullSecrets, error) {
	if c.creds == nil {
		return nil, fmt.Errorf("%s: no credential store configured", credentials.KindImagePullSecrets)
	}
	return c.creds.ReadPullSecrets(ctx, w)
}

// Repository names repo at the entry's api_url host.
func (c *Client) Repository(repo string) (name.Repository, error) {
	var opts []name.Option
	if c.cfg.PlainHTTP() {
		opts = append(opts, name.Insecure)
	}
	return name.NewRepository(c.cfg.Host()+"/"+repo, opts...)
}

// DoWith runs f with the authenticated transport of repo. When the registry
// refuses the credential itself (see refusedCredential), the cached
// credential and transport are dropped once and f runs again with fresh
// ones. A 403, or a 401 that only says the credential does not reach this
// repository, keeps them: a tenant naming repositories it may not read must
// not make an ext: script run again and again.
//
// A connection that broke in the middle of an answer (a reset, a truncated
// body) is also tried once more: the transport retries failures before the
// answer's headers, but not a body that was cut off after them.
//
// pull is the admitted object's pull secrets, for an entry whose
// credentials are imagepullsecrets (nil otherwise). Their ID keys the
// authenticated transport, so a token obtained with one workload's Secrets
// never serves another's request.
//
// The pull secrets' credentials for the repository are tried in turn, as
// the kubelet tries them (credentials.PullSecrets.Auths): one the registry
// refuses (401, 403) moves the lookup to the next, and the transport kept
// remembers which one was accepted. When every one is refused, the error
// says which Secrets and auths keys were presented, or that none was.
func (c *Client) DoWith(ctx context.Context, repo name.Repository, pull *credentials.PullSecrets, f func(http.RoundTripper) error) error {
	if pull == nil {
		return c.doWith(ctx, repo, nil, 0, f)
	}
	auths := pull.Auths(c.cfg.Host(), repo.RepositoryStr())
	start, key := 0, keyOf(repo, pull)
	if ct, ok := c.transports.Peek(key); ok && ct.candidate < len(auths) {
		start = ct.candidate // the one accepted last time: the earlier ones were refused
	}
	// From the one accepted last time, then the others in order: a
	// registry that now refuses it may accept an earlier one.
	var err error
	for n := range auths {
		err = c.doWith(ctx, repo, pull, (start+n)%len(auths), f)
		if err == nil || ctx.Err() != nil || !deniedHere(err) {
			return err
		}
	}
	// Every one was refused: none is "the accepted one", and the next
	// lookup starts again from the first. (A lone credential's transport
	// stays: it can only start from it, with its token still good.)
	if len(auths) > 1 {
		c.transports.Remove(key)
	}
	return fmt.Errorf("%w (%s)", err, pull.Presented(c.cfg.Host(), repo.RepositoryStr()))
}

// deniedHere reports whether the registry refused the credential, or its
// access to the repository: 401 or 403.
func deniedHere(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden)
}

// doWith is one credential's go: cand is the index of the pull secrets'
// credential to present (0 without pull secrets).
func (c *Client) doWith(ctx context.Context, repo name.Repository, pull *credentials.PullSecrets, cand int, f func(http.RoundTripper) error) error {
	key := keyOf(repo, pull)
	for attempt := 0; ; attempt++ {
		rt, err := c.transport(ctx, repo, pull, cand)
		if err == nil {
			err = f(rt)
		}
		if err == nil || attempt > 0 || ctx.Err() != nil {
			return err
		}
		switch {
		case refusedCredential(err) && pull != nil:
			// The Secret's credential is what the workload presents:
			// nothing to fetch again until the Secret changes (a new
			// resourceVersion, a new key); DoWith tries the next one.
			c.transports.Remove(key)
			return err
		case refusedCredential(err) && c.source != nil:
			c.transports.Remove(key)
			if !c.creds.Invalidate(*c.source, c.cfg.Host()) {
				return err // dropped moments ago: do not fetch it again yet
			}
		case refused(err):
			c.transports.Remove(key) // a new token, same credential
		case broken(err):
		default:
			return err
		}
	}
}

func broken(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF)
}

func refused(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusUnauthorized
}

// refusedCredential reports whether the registry refused the credential
// itself: a 401 from the ping (GET /v2/) or the token endpoint (anything
// outside /v2/), or from a request that carried the credential as Basic
// auth. A 401 on a repository request with a bearer token only says that
// the token does not reach that repository (distribution's
// insufficient_scope), and a 403 is a per-repository denial.
func refusedCredential(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		return false
	}
	if te.Request == nil || te.Request.URL == nil {
		return false
	}
	p := te.Request.URL.Path
	if p == "/v2/" || p == "/v2" || !strings.HasPrefix(p, "/v2/") {
		return true
	}
	return strings.HasPrefix(te.Request.Header.Get("Authorization"), "Basic ")
}

// cachedTransport is an authenticated transport and until when the
// credentials it holds may be used (zero: until a restart); with pull
// secrets, which of their credentials it presents.
type cachedTransport struct {
	rt        http.RoundTripper
	expires   time.Time
	candidate int
}

// transport returns the cached authenticated transport of repo, or makes
// one (a ping and, for bearer registries, a token request). It is remade
// when its credentials pass credsexpire, not only when a registry refuses them.
//
// Transports are kept per repository and per workload credential (the
// pull secrets' ID): a token obtained with one namespace's Secrets is never
// used for another's request.
func (c *Client) transport(ctx context.Context, repo name.Repository, pull *credentials.PullSecrets, cand int) (http.RoundTripper, error) {
	key := keyOf(repo, pull)
	if ct, ok := c.transports.Get(key); ok && ct.candidate == cand && (ct.expires.IsZero() || time.Now().Before(ct.expires)) {
		return ct.rt, nil
	}
	return c.flight.Do(ctx, transportCall{key: key, candidate: cand}, func() (http.RoundTripper, error) {
		fctx, cancel := ctxutil.Detach(ctx)
		defer cancel()
		auth, expires, err := c.authenticator(fctx, repo.RepositoryStr(), pull, cand)
		if err != nil {
			return nil, err
		}
		rt, err := transport.NewWithContext(fctx, repo.Registry, auth, c.base, []string{repo.Scope(transport.PullScope)})
		if err != nil {
			return nil, err
		}
		c.transports.Add(key, cachedTransport{rt: rt, expires: expires, candidate: cand})
		return rt, nil
	})
}

// transportKey keys the transport cache: the repository, and the
// identity of the workload's pull secrets when the entry uses them.
type transportKey struct {
	repo         string
	pullSecretID string // "" without pull secrets
}

// transportCall keys the making of a transport: which of the pull
// secrets' credentials it presents, too.
type transportCall struct {
	key       transportKey
	candidate int
}

func keyOf(repo name.Repository, pull *credentials.PullSecrets) transportKey {
	if pull == nil {
		return transportKey{repo: repo.String()}
	}
	return transportKey{repo: repo.String(), pullSecretID: pull.ID()}
}

// authenticator returns the entry's credentials for a repository path and
// until when they may be used; pull is the admitted object's pull secrets,
// for an entry whose credentials are imagepullsecrets, and cand which of
// their credentials for the repository to present.
func (c *Client) authenticator(ctx context.Context, repository string, pull *credentials.PullSecrets, cand int) (authn.Authenticator, time.Time, error) {
	src := c.source
	if src == nil {
		return authn.Anonymous, time.Time{}, nil
	}
	if src.Kind == credentials.KindImagePullSecrets {
		if pull == nil {
			return nil, time.Time{}, fmt.Errorf("credentials from %s: the lookup carries no object's pull secrets", src)
		}
		auths := pull.Auths(c.cfg.Host(), repository)
		if cand >= len(auths) {
			cand = 0
		}
		return authn.FromConfig(auths[cand]), time.Time{}, nil
	}
	if c.creds == nil {
		return nil, time.Time{}, fmt.Errorf("credentials from %s: no credential store configured", src)
	}
	return c.creds.Authenticator(ctx, *src, credentials.FetchOptions{
		Host:       c.cfg.Host(),
		Repository: repository,
		Expire:     c.cfg.CredsExpire,
		Timeout:    c.cfg.CredsTimeout,
		HiddenEnv:  c.hiddenEnv,
	})
}

// Ping checks the registry with GET /v2/ and its credentials, which also
// warms the credential cache. It records the outcome in image_pin_registry_up.
func (c *Client) Ping(ctx context.Context) error {
	reg, err := name.NewRegistry(c.cfg.Host(), c.registryOpts()...)
	if err != nil {
		return err
	}
	if src := c.source; src != nil && src.Kind == credentials.KindImagePullSecrets {
		// Its credentials come with each admission: the ping can only
		// show that the registry answers.
		err = c.reachable(ctx)
		c.metrics.setUp(c.cfg.Name, err == nil)
		return err
	}
	auth, _, err := c.authenticator(ctx, "", nil, 0)
	if err == nil {
		err = c.pingWith(ctx, reg, auth)
	}
	c.metrics.setUp(c.cfg.Name, err == nil)
	return err
}

// pingWith sends GET /v2/ with the credentials: the handshake alone does
// not prove Basic credentials, which are only sent with a request.
func (c *Client) pingWith(ctx context.Context, reg name.Registry, auth authn.Authenticator) error {
	rt, err := transport.NewWithContext(ctx, reg, auth, c.base, nil)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.APIURL.String()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/v2/: %s", c.cfg.APIURL, resp.Status)
	}
	return nil
}

// reachable sends GET /v2/ without credentials: a 200, or a 401 that asks
// for them, is a registry that answers.
func (c *Client) reachable(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.APIURL.String()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("GET %s/v2/: %s", c.cfg.APIURL, resp.Status)
	}
	return nil
}

func (c *Client) registryOpts() []name.Option {
	if c.cfg.PlainHTTP() {
		return []name.Option{name.Insecure}
	}
	return nil
}
