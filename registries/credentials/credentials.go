package credentials

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/internal/ctxutil"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// Cache fetches and caches the credentials of every source. One lives
// for the whole process, so a script's answer outlives config reloads and the
// admission that asked for it.
type Cache struct {
	secrets client.Reader // uncached: needs get on the named Secrets only
	lookup  func(string) (string, bool)
	environ func() []string

	flight singleflight.Group
	mu     sync.Mutex
	cache  map[string]cachedCreds

	process context.Context // background refreshes of cloud credentials stop with it
	cloud   *cloudTokens
	// dropped is when each source's credential was last dropped, so that
	// a registry refusing it again and again fetches it at most once per
	// refetchInterval.
	dropped         map[string]time.Time
	refetchInterval time.Duration
	// failed is each source's last failed fetch, answered from memory for
	// failureHold: a failing ext: script (or Secret read) runs at most once
	// per hold however many lookups any tenant starts.
	failed      map[string]failedFetch
	failureHold time.Duration
	log         logr.Logger
	now         func() time.Time
	// scriptFailures is each ext: script's last failure, until it succeeds;
	// scriptLogged is when each script and cause was last logged.
	scriptFailures map[string]ScriptFailure
	scriptLogged   map[string]time.Time
	// decoded holds pull Secrets read for imagepullsecrets entries, by
	// namespace/name/resourceVersion, so each version is decoded once.
	decoded *lru.Cache[string, pulledSecret]
}

type failedFetch struct {
	err error
	at  time.Time
}

// DefaultFailureHold is how long a failed credential fetch is answered
// from memory before the source is asked again.
const DefaultFailureHold = 5 * time.Second

// WithFailureHold sets how long a failed fetch is answered from memory.
func WithFailureHold(d time.Duration) Option {
	return func(c *Cache) { c.failureHold = d }
}

// DefaultRefetchInterval is how soon a credential the registry refused may
// be fetched again: an ext: script can cost seconds of CPU and its
// provider's rate limit.
const DefaultRefetchInterval = 30 * time.Second

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

type cachedCreds struct {
	auth    authn.AuthConfig
	scoped  []scopedAuth // a pull secret's entries for the host, most specific first
	expires time.Time    // zero: until restart
}

// Option configures Credentials.
type Option func(*Cache)

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

// WithContext ties the background refresh of cloud credentials (aws:,
// gcp:, azure:) to ctx, the process's; Close stops it too.
func WithContext(ctx context.Context) Option {
	return func(c *Cache) { c.process = ctx }
}

// New makes the process-wide credential cache.
func New(opts ...Option) *Cache {
	c := &Cache{lookup: os.LookupEnv, environ: os.Environ, cache: map[string]cachedCreds{}, process: context.Background(),
		dropped: map[string]time.Time{}, refetchInterval: DefaultRefetchInterval, log: logr.Discard(),
		failed: map[string]failedFetch{}, failureHold: DefaultFailureHold, now: time.Now,
		scriptFailures: map[string]ScriptFailure{}, scriptLogged: map[string]time.Time{}}
	c.decoded, _ = lru.New[string, pulledSecret](maxDecodedSecrets)
	for _, o := range opts {
		o(c)
	}
	c.cloud = newCloudTokens(c.process, c.failureHold)
	return c
}

// Close stops the background refresh of cloud credentials and waits for it.
func (c *Cache) Close() { c.cloud.close() }

// DefaultCredsTimeout bounds an ext: script when the entry sets no
// credstimeout; Argo CD Image Updater hard-codes the same 10s.
const DefaultCredsTimeout = 10 * time.Second

// FetchOptions is what a fetch needs to know about the entry that asks.
type FetchOptions struct {
	Host       string        // the registry host, to pick the right auths entry of a pull secret
	Repository string        // the repository path at Host, for path-scoped auths keys
	Expire     time.Duration // credsexpire; 0 caches until restart
	Timeout    time.Duration // credstimeout, for ext: scripts
	HiddenEnv  []string      // variables named by env: sources, kept from ext: scripts
}

func cacheKey(src Source, host string) string {
	if src.Kind == "pullsecret" {
		return src.String() + "|" + host
	}
	return src.String()
}

// Get returns the credentials of src, from the cache while they are fresh.
// Concurrent calls for one source share one fetch. The fetch runs detached
// from ctx so that a script's answer is cached even when ctx ends first.
func (c *Cache) Get(ctx context.Context, src Source, o FetchOptions) (authn.AuthConfig, error) {
	auth, _, err := c.GetUntil(ctx, src, o)
	return auth, err
}

// GetUntil is Get, also saying until when the credentials may be used
// (zero: until a restart), so that what holds them can honour credsexpire.
func (c *Cache) GetUntil(ctx context.Context, src Source, o FetchOptions) (authn.AuthConfig, time.Time, error) {
	if isCloudKind(src.Kind) {
		auth, err := c.cloud.get(ctx, src, o)
		return auth, time.Time{}, err
	}
	key := cacheKey(src, o.Host)
	c.mu.Lock()
	if cc, ok := c.cache[key]; ok && (cc.expires.IsZero() || time.Now().Before(cc.expires)) {
		c.mu.Unlock()
		return cc.pick(o.Repository), cc.expires, nil
	}
	if f, ok := c.failed[key]; ok && time.Since(f.at) < c.failureHold {
		c.mu.Unlock()
		return authn.AuthConfig{}, time.Time{}, f.err
	}
	c.mu.Unlock()
	ch := c.flight.DoChan(key, func() (any, error) {
		fctx, cancel := ctxutil.DetachFor(ctx, fetchBound(src, o))
		defer cancel()
		cc, err := c.fetch(fctx, src, o)
		if err != nil {
			c.mu.Lock()
			c.failed[key] = failedFetch{err: err, at: time.Now()}
			c.mu.Unlock()
			return nil, err
		}
		if o.Expire > 0 {
			cc.expires = time.Now().Add(o.Expire)
		}
		c.mu.Lock()
		c.cache[key] = cc
		delete(c.failed, key)
		c.mu.Unlock()
		return cc, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return authn.AuthConfig{}, time.Time{}, r.Err
		}
		cc := r.Val.(cachedCreds)
		return cc.pick(o.Repository), cc.expires, nil
	case <-ctx.Done():
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("credentials from %s: %w", src, ctx.Err())
	}
}

// Authenticator returns the credentials of src for a repository path and
// until when they may be used (zero: until a restart). A cloud source's
// authenticator asks the token cache at every use, so what holds it never
// outlives a token: no expiry is given for it.
func (c *Cache) Authenticator(ctx context.Context, src Source, o FetchOptions) (authn.Authenticator, time.Time, error) {
	if isCloudKind(src.Kind) {
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
	if src.Kind == "ext" {
		if o.Timeout > 0 {
			return o.Timeout
		}
		return DefaultCredsTimeout
	}
	return 30 * time.Second
}

// Invalidate drops the cached credentials of src, after a registry refused
// them, and reports whether it did: within refetchInterval of the last drop
// it keeps them, so a registry that keeps refusing costs one fetch per
// interval rather than one per request.
func (c *Cache) Invalidate(src Source, host string) bool {
	key := cacheKey(src, host)
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.dropped[key]; ok && time.Since(last) < c.refetchInterval {
		return false
	}
	c.dropped[key] = time.Now()
	delete(c.cache, key)
	if isCloudKind(src.Kind) {
		c.cloud.invalidate(src, host)
	}
	return true
}

func (c *Cache) fetch(ctx context.Context, src Source, o FetchOptions) (cachedCreds, error) {
	if src.Kind == "pullsecret" {
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
	case "env":
		v, ok := c.lookup(src.Var)
		if !ok || v == "" {
			return authn.AuthConfig{}, fmt.Errorf("credentials from %s: variable is not set", src)
		}
		return parseUserPass(v, src)
	case "secret":
		s, err := c.secret(ctx, src)
		if err != nil {
			return authn.AuthConfig{}, err
		}
		v, ok := s.Data[src.Key]
		if !ok {
			return authn.AuthConfig{}, fmt.Errorf("credentials from %s: the secret has no key %q", src, src.Key)
		}
		return parseUserPass(string(v), src)
	case "ext":
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

// ParseCredentialOutput reads what an ext: script printed: one user:pass
// line. It is exported for the fuzzer.
func ParseCredentialOutput(out []byte) (authn.AuthConfig, error) {
	return parseUserPass(string(out), Source{Kind: "ext"})
}

type dockerConfig struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
}

// scopedAuth is one auths entry of a pull secret for the registry host:
// path is the repository path it is limited to ("" for the whole host).
type scopedAuth struct {
	key  string
	host string // normalised, as normalizeHost gives it
	path string
	auth authn.AuthConfig
}

// covers reports whether the entry serves the repository path: a key
// without a path serves the whole host.
func (s scopedAuth) covers(repository string) bool {
	return s.path == "" || repository == s.path || strings.HasPrefix(repository, s.path+"/")
}

// pick chooses the credentials for a repository path: of a pull secret's
// entries for the host, the most specific one whose path covers it, as the
// kubelet does (ghcr.io/org-a before ghcr.io; docker.io and
// https://index.docker.io/v1/ are one key, the first in order taken).
func (cc cachedCreds) pick(repository string) authn.AuthConfig {
	for _, s := range cc.scoped {
		if s.covers(repository) {
			return s.auth
		}
	}
	if len(cc.scoped) > 0 {
		return authn.AuthConfig{} // no entry covers it: anonymous
	}
	return cc.auth
}

// pullSecretAuths is secretAuths for a pullsecret: source, which must
// have an entry for host.
func pullSecretAuths(s *corev1.Secret, host string, src Source) ([]scopedAuth, error) {
	out, err := secretAuths(s, host, src)
	if err == nil && len(out) == 0 {
		return nil, fmt.Errorf("credentials from %s: no auths entry for %q", src, host)
	}
	return out, err
}

// secretAuths reads a .dockerconfigjson (or legacy .dockercfg) and keeps
// the entries for host, comparing hosts without scheme, with every Docker
// Hub name as one, most specific (longest path) first, then by key. With
// host "", it keeps every entry, each with its host.
func secretAuths(s *corev1.Secret, host string, src Source) ([]scopedAuth, error) {
	var cfg dockerConfig
	if b, ok := s.Data[corev1.DockerConfigJsonKey]; ok {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("credentials from %s: %s is not valid JSON", src, corev1.DockerConfigJsonKey)
		}
	} else if b, ok := s.Data[corev1.DockerConfigKey]; ok {
		if err := json.Unmarshal(b, &cfg.Auths); err != nil {
			return nil, fmt.Errorf("credentials from %s: %s is not valid JSON", src, corev1.DockerConfigKey)
		}
	} else {
		return nil, fmt.Errorf("credentials from %s: the secret has no %s", src, corev1.DockerConfigJsonKey)
	}
	want := normalizeHost(host)
	var out []scopedAuth
	for k, a := range cfg.Auths {
		h, path := splitAuthKey(k)
		if h != want && host != "" {
			continue
		}
		sa := scopedAuth{key: k, host: h, path: path}
		if a.Username != "" || a.Password != "" {
			sa.auth = authn.AuthConfig{Username: a.Username, Password: a.Password}
		} else {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("credentials from %s: the auth of %q is not base64", src, keyForMessage(k))
			}
			if sa.auth, err = parseUserPass(string(raw), src); err != nil {
				return nil, err
			}
		}
		out = append(out, sa)
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].path) != len(out[j].path) {
			return len(out[i].path) > len(out[j].path)
		}
		return out[i].key < out[j].key
	})
	return out, nil
}

// keyForMessage is an auths key as messages may show it: a key written with
// user:password@ before its host would otherwise print the password.
func keyForMessage(k string) string {
	if i := strings.LastIndex(k, "@"); i >= 0 {
		scheme := ""
		if j := strings.Index(k, "://"); j >= 0 && j < i {
			scheme = k[:j+3]
		}
		return scheme + "…@" + k[i+1:]
	}
	return k
}

// splitAuthKey reads an auths key as host and repository path, without
// scheme, and without the /v1/ or /v2/ API path docker login writes.
func splitAuthKey(k string) (host, path string) {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	host, path, _ = strings.Cut(k, "/")
	path = strings.Trim(path, "/")
	if path == "v1" || path == "v2" {
		path = ""
	}
	return normalizeHost(host), path
}

// normalizeHost is h without scheme or path, with every Docker Hub name as
// docker.io.
func normalizeHost(h string) string {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	return imageref.NormalizePrefix(h)
}

// maxScriptOutput bounds what is read of an ext: script's stdout (one
// user:pass line; ECR's tokens are about 2 KiB) and stderr.
const maxScriptOutput = 64 << 10

// stderrTail is how much of the end of a script's stderr is kept to find
// its last line in.
const stderrTail = 4 << 10

// runScript runs an ext: script directly (no shell), with the webhook's
// environment minus the env: credentials, in its own process group, which
// is killed on every way out, so no child outlives the fetch.
//
// The error, which reaches tenants in warnings and denials, says only how
// the script ended. Its stderr is for the operator only, redacted: scripts
// print tokens there (set -x, verbose CLIs). A failure logs its exit status
// and the last stderr line at the default level (scriptFailed); the whole
// stderr goes to the debug log.
func (c *Cache) runScript(ctx context.Context, src Source, o FetchOptions) (authn.AuthConfig, error) {
	cmd := exec.CommandContext(ctx, src.Path)
	cmd.Env = withoutVars(c.environ(), o.HiddenEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	tail := &tailBuffer{max: stderrTail}
	out := &limitedBuffer{buf: &stdout, max: maxScriptOutput}
	cmd.Stdout = out
	cmd.Stderr = io.MultiWriter(&limitedBuffer{buf: &stderr, max: maxScriptOutput}, tail)
	err := cmd.Start()
	if err != nil {
		err = fmt.Errorf("credentials from %s: the credential script could not be started: %v", src, errors.Unwrap(err))
		c.scriptFailed(src, -1, err, nil)
		return authn.AuthConfig{}, err
	}
	err = cmd.Wait()
	killGroup(cmd.Process.Pid)
	if errors.Is(err, exec.ErrWaitDelay) {
		// The script exited 0 but a child it left behind held its output
		// open; the child is gone now and the output is complete.
		err = nil
	}
	if stderr.Len() > 0 {
		c.log.V(1).Info("credential script stderr", "source", src.String(), "stderr", Redact(stderr.String()))
	}
	exit := -1
	if cmd.ProcessState != nil {
		exit = cmd.ProcessState.ExitCode()
	}
	fail := func(err error) (authn.AuthConfig, error) {
		c.scriptFailed(src, exit, err, tail.b)
		return authn.AuthConfig{}, err
	}
	if ctx.Err() != nil {
		return fail(fmt.Errorf("credentials from %s: the credential script did not finish within %s", src, fetchBound(src, o)))
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fail(fmt.Errorf("credentials from %s: the credential script failed (exit %d)", src, ee.ExitCode()))
		}
		return fail(fmt.Errorf("credentials from %s: the credential script failed", src))
	}
	if out.over {
		return fail(fmt.Errorf("credentials from %s: the credential script printed more than %d KiB", src, maxScriptOutput>>10))
	}
	auth, err := parseUserPass(stdout.String(), src)
	if err != nil {
		return fail(fmt.Errorf("%w (the script must print one line user:pass)", err))
	}
	c.mu.Lock()
	delete(c.scriptFailures, src.String())
	c.mu.Unlock()
	return auth, nil
}

// ScriptFailure is how an ext: script last failed, for the operator: the
// log and resolve show it; warnings and denials, which reach tenants, never
// do.
type ScriptFailure struct {
	Exit   int    // the exit status; -1 when it did not exit (not started, killed)
	Cause  string // what the tenant's message says, without the source
	Stderr string // the last line of stderr, redacted and cut to 200 bytes
	at     time.Time
}

func (f ScriptFailure) String() string {
	s := fmt.Sprintf("exit %d, %s", f.Exit, f.Cause)
	if f.Exit < 0 {
		s = f.Cause
	}
	if f.Stderr == "" {
		return s + "; nothing on stderr"
	}
	return s + "; last line of stderr: " + f.Stderr
}

// LastScriptFailure returns how the ext: script of src last failed, when
// its last run failed.
func (c *Cache) LastScriptFailure(src Source) (ScriptFailure, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.scriptFailures[src.String()]
	return f, ok
}

// scriptLogEvery is how often one script's failure, with one cause, is
// logged at most: a failing script runs once per failure hold, and the same
// line every few seconds tells the operator nothing new.
const scriptLogEvery = time.Minute

// scriptFailed remembers how the script of src failed and logs it at the
// default level, at most once per scriptLogEvery per script and cause.
func (c *Cache) scriptFailed(src Source, exit int, err error, stderr []byte) {
	f := ScriptFailure{Exit: exit, Cause: strings.TrimPrefix(err.Error(), "credentials from "+src.String()+": "),
		Stderr: lastStderrLine(stderr, src.Path), at: c.now()}
	key := src.String() + "|" + f.Cause
	c.mu.Lock()
	c.scriptFailures[src.String()] = f
	last, seen := c.scriptLogged[key]
	log := !seen || f.at.Sub(last) >= scriptLogEvery
	if log {
		if len(c.scriptLogged) >= maxScriptLogKeys {
			for k, t := range c.scriptLogged {
				if f.at.Sub(t) >= scriptLogEvery {
					delete(c.scriptLogged, k)
				}
			}
		}
		c.scriptLogged[key] = f.at
	}
	c.mu.Unlock()
	if log {
		c.log.Info("credential script failed", "source", src.String(), "exit", exit, "cause", f.Cause, "stderr", f.Stderr)
	}
}

// maxScriptLogKeys is the number of script and cause pairs above which the
// log limiter forgets those it logged more than scriptLogEvery ago; the
// scripts are the config's, so this is reached only by many exit statuses.
const maxScriptLogKeys = 256

func withoutVars(env, hidden []string) []string {
	if len(hidden) == 0 {
		return env
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, h := range hidden {
			if name == h {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

type limitedBuffer struct {
	buf  *bytes.Buffer
	max  int
	over bool // more than max was written
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(p) > l.max-l.buf.Len() {
		l.over = true
	}
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
