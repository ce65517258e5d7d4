package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the registry clients' pools.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// setupB lifts the rate limit, which would otherwise be what a cold
// benchmark measures (20 requests/s by default).
func setupB(b *testing.B, srv *registrytest.Server, repo string) testTarget {
	return setup(b, srv, repo, withLimit(100000))
}

// testEntry is the one registry entry of a test, built here rather than
// through config, which sits above the resolver.
type testEntry struct {
	registries.Entry
	env []string // the environment its env: credentials read
	// What a config gives each query through this entry.
	platforms   []string
	tagSortMode resolver.TagSortMode
}

// entryOption sets what a config file's entry fields would.
type entryOption func(*testEntry)

// withLogin gives the entry the credentials user:pass, through env:CREDS.
func withLogin(userPass string) entryOption {
	return func(e *testEntry) {
		e.Credentials, e.env = &credentials.Source{Kind: credentials.KindEnv, Var: "CREDS"}, append(e.env, "CREDS="+userPass)
	}
}

func withLimit(perSecond int) entryOption { return func(e *testEntry) { e.Limit = perSecond } }

func withPlatforms(p ...string) entryOption { return func(e *testEntry) { e.platforms = p } }

func withTagSortMode(m resolver.TagSortMode) entryOption {
	return func(e *testEntry) { e.tagSortMode = m }
}

// testTarget is where a test's lookups go, with what the entry says of its
// answers (platforms, tagsortmode).
type testTarget struct {
	registries.Target
	platforms   []string
	tagSortMode resolver.TagSortMode
}

// setup returns the target of repo on srv, through an entry named test whose
// prefix is srv's host.
func setup(t testing.TB, srv *registrytest.Server, repo string, opts ...entryOption) testTarget {
	t.Helper()
	return target(t, srv.URL, srv.Host, srv.Host+"/"+repo, opts...)
}

// target defaults and validates the entry for apiURL and prefix as config
// does, builds its registries.Set and matches image in it.
func target(t testing.TB, apiURL, prefix, image string, opts ...entryOption) testTarget {
	t.Helper()
	u, err := url.Parse(apiURL)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEntry{Entry: registries.Entry{Prefix: prefix}}
	e.Name, e.APIURL = "test", u
	for _, o := range opts {
		o(e)
	}
	e.SetDefaults()
	if errs := e.Validate(nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	creds := credentials.New(credentials.WithEnvironment(e.env))
	set, err := registries.NewSet([]*registries.Entry{&e.Entry}, registries.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	img, err := imageref.ParseImage(image)
	if err != nil {
		t.Fatal(err)
	}
	tgt, ok := set.Match(img, "default")
	if !ok {
		t.Fatalf("no entry matches %s", image)
	}
	return testTarget{Target: tgt, platforms: e.platforms, tagSortMode: e.tagSortMode}
}

func digestPolicy() resolver.Policy {
	return resolver.Policy{Strategy: resolver.Digest, CacheTTL: 5 * time.Minute}
}

func semverPolicy(t *testing.T, c string) resolver.Policy {
	t.Helper()
	con, err := resolver.ParseConstraint(c)
	if err != nil {
		t.Fatal(err)
	}
	return resolver.Policy{Strategy: resolver.Semver, Constraint: con, CacheTTL: 5 * time.Minute}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestHundredConcurrentResolutionsOfOneTagMakeOneHEAD(t *testing.T) {
	srv := registrytest.New(t, registrytest.WithBearer("u", "p"))
	want := srv.PushImage(t, "app:latest")
	tgt := setup(t, srv, "app", withLogin("u:p"))
	srv.Reset()
	r := resolver.New()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Resolve(ctxFor(t, 10*time.Second), query(tgt, "latest", digestPolicy()))
			if err == nil && res.Digest != want {
				err = fmt.Errorf("digest %s, want %s", res.Digest, want)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Count("HEAD", "manifest"); n != 1 {
		t.Errorf("manifest HEADs = %d, want 1", n)
	}
	if n := srv.Count("GET", "manifest"); n != 0 {
		t.Errorf("manifest GETs = %d, want 0", n)
	}
	if n := srv.Count("GET", "token"); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	srv.Reset()
	res, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "latest", digestPolicy()))
	if err != nil || !res.Cached {
		t.Fatalf("second resolution: %+v, %v; want a cache hit", res, err)
	}
	if n := srv.Total(); n != 0 {
		t.Errorf("a second resolution within the TTL sent %d requests, want 0", n)
	}
}

func TestSemverPicksTheNewestMatchingTagAsWritten(t *testing.T) {
	srv := registrytest.New(t, registrytest.WithBasic("u", "p"))
	for _, tag := range []string{"1.3.9", "1.4.0", "v1.4.7", "1.4.7-rc1", "1.5.0", "20240101", "latest", "v1.4.2"} {
		srv.PushImage(t, "api:"+tag)
	}
	want := srv.PushImage(t, "api:1.4.7")
	tgt := setup(t, srv, "api", withLogin("u:p"))
	tests := []struct {
		name, constraint, wantTag string
	}{
		{"a tilde range takes the newest patch; equal versions go to the lexically greatest tag", "~1.4", "v1.4.7"},
		{"a caret range takes the newest minor", "^1.3", "1.5.0"},
		{"pre-releases are chosen only when the constraint names one", ">=1.4.7-0 <1.4.7", "1.4.7-rc1"},
		{"an upper bound keeps date tags out", ">=1 <2", "1.5.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := resolver.New()
			srv.Reset()
			res, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "", semverPolicy(t, tc.constraint)))
			if err != nil {
				t.Fatal(err)
			}
			if res.Tag != tc.wantTag {
				t.Errorf("tag = %q, want %q", res.Tag, tc.wantTag)
			}
			if tc.wantTag == "v1.4.7" && res.Digest == want {
				t.Errorf("v1.4.7 and 1.4.7 are different images; got 1.4.7's digest")
			}
			if n := srv.Count("GET", "tags"); n != 1 {
				t.Errorf("tag listings = %d, want 1", n)
			}
			if n := srv.Count("HEAD", "manifest"); n != 1 {
				t.Errorf("manifest HEADs = %d, want 1", n)
			}
		})
	}
}

func TestSemverWithoutAMatchIsAnErrorNamingTheConstraint(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "api:1.0.0")
	tgt := setup(t, srv, "api")
	_, err := resolver.New().Resolve(ctxFor(t, 5*time.Second), query(tgt, "", semverPolicy(t, "~9.9")))
	if err == nil || !strings.Contains(err.Error(), `"~9.9"`) {
		t.Fatalf("err = %v, want one naming the constraint", err)
	}
}

func TestATenThousandTagRepositoryIsListedPageByPage(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 10,000 tags")
	}
	srv := registrytest.New(t)
	srv.PushImage(t, "big:0.0.1")
	// Tag one image 10,000 times through the registry's manifest PUT.
	pushTags(t, srv, "big", 10000)
	tgt := setup(t, srv, "big")
	srv.Reset()
	res, err := resolver.New().Resolve(ctxFor(t, 30*time.Second), query(tgt, "", semverPolicy(t, ">=0")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Tag != "99.99.0" {
		t.Errorf("tag = %q, want 99.99.0 (the last page's newest)", res.Tag)
	}
	if n := srv.Count("GET", "tags"); n != 11 {
		t.Errorf("tag pages = %d, want 11 (10,001 tags at 1,000 a page)", n)
	}
}

func TestStrategiesChooseTheTagTheirNameSays(t *testing.T) {
	srv := registrytest.New(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	srv.PushImageCreated(t, "app:b-old", base)
	srv.PushImageCreated(t, "app:a-newest", base.Add(48*time.Hour))
	srv.PushImageCreated(t, "app:c-mid", base.Add(24*time.Hour))
	srv.PushImageCreated(t, "app:z-ignored", base.Add(96*time.Hour))
	tgt := setup(t, srv, "app")
	allow, _ := resolver.ParseAllowTags("regexp:^[a-y]-")
	tests := []struct {
		name    string
		policy  resolver.Policy
		wantTag string
	}{
		{"alphabetical takes the last tag in lexical order", resolver.Policy{Strategy: resolver.Alphabetical}, "z-ignored"},
		{"allow_tags filters before choosing", resolver.Policy{Strategy: resolver.Alphabetical, AllowTags: allow}, "c-mid"},
		{"ignore_tags filters before choosing", resolver.Policy{Strategy: resolver.Alphabetical, IgnoreTags: []string{"z-*", "c*"}}, "b-old"},
		{"newest-build takes the newest image config", resolver.Policy{Strategy: resolver.NewestBuild}, "z-ignored"},
		{"newest-build honours the filters", resolver.Policy{Strategy: resolver.NewestBuild, IgnoreTags: []string{"z-*"}}, "a-newest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := resolver.New().Resolve(ctxFor(t, 10*time.Second), query(tgt, "", tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			if res.Tag != tc.wantTag {
				t.Errorf("tag = %q, want %q", res.Tag, tc.wantTag)
			}
		})
	}
}

func TestNewestBuildWithTagSortModeFetchesNoMetadata(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "app:a")
	want := srv.PushImage(t, "app:b")
	tgt := setup(t, srv, "app", withTagSortMode(resolver.TagSortLatestLast))
	srv.Reset()
	res, err := resolver.New().Resolve(ctxFor(t, 5*time.Second), query(tgt, "", resolver.Policy{Strategy: resolver.NewestBuild}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Tag != "b" || res.Digest != want {
		t.Errorf("got %s@%s, want b@%s", res.Tag, res.Digest, want)
	}
	if n := srv.Count("GET", "blob") + srv.Count("GET", "manifest"); n != 0 {
		t.Errorf("%d metadata requests, want 0", n)
	}
}

func TestAMultiArchImageResolvesToItsIndexDigest(t *testing.T) {
	srv := registrytest.New(t)
	want := srv.PushIndex(t, "multi:1", "linux/amd64", "linux/arm64")
	tests := []struct {
		name      string
		platforms []string
		wantErr   string
	}{
		{"without platforms the index digest is the answer", nil, ""},
		{"an index covering the platforms is accepted", []string{"linux/amd64", "linux/arm64"}, ""},
		{"an index missing a platform is an error naming it", []string{"linux/amd64", "linux/s390x"}, "linux/s390x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tgt := setup(t, srv, "multi", withPlatforms(tc.platforms...))
			res, err := resolver.New().Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", digestPolicy()))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || res.Digest != want {
				t.Fatalf("got %+v, %v; want the index digest %s", res, err, want)
			}
		})
	}
}

func TestAHeadWithoutDigestFallsBackToGet(t *testing.T) {
	srv := registrytest.New(t)
	want := srv.PushImage(t, "app:1")
	tgt := setup(t, srv, "app")
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(http.StatusOK)
			return true
		}
		return false
	})
	res, err := resolver.New().Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", digestPolicy()))
	if err != nil || res.Digest != want {
		t.Fatalf("got %+v, %v; want %s", res, err, want)
	}
	if n := srv.Count("GET", "manifest"); n != 1 {
		t.Errorf("manifest GETs = %d, want 1", n)
	}
}

func TestFaultsGiveTheDocumentedOutcomeWithinTheDeadline(t *testing.T) {
	type fault func(srv *registrytest.Server) func(w http.ResponseWriter, r *http.Request) bool
	onManifest := func(n int, f func(w http.ResponseWriter, r *http.Request)) fault {
		return func(*registrytest.Server) func(w http.ResponseWriter, r *http.Request) bool {
			var mu sync.Mutex
			seen := 0
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/manifests/") {
					return false
				}
				mu.Lock()
				defer mu.Unlock()
				if seen >= n {
					return false
				}
				seen++
				f(w, r)
				return true
			}
		}
	}
	status := func(code int, hdr ...string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			w.WriteHeader(code)
		}
	}
	reset := func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			conn.Close()
		}
	}
	tests := []struct {
		name     string
		fault    fault
		deadline time.Duration
		wantOK   bool
		wantErr  string
	}{
		{"a 429 with Retry-After is retried after the wait", onManifest(1, status(429, "Retry-After", "1")), 5 * time.Second, true, ""},
		{"a 429 whose Retry-After passes the deadline fails at once", onManifest(1, status(429, "Retry-After", "30")), 2 * time.Second, false, "429"},
		{"a 429 without Retry-After backs off and retries", onManifest(1, status(429)), 5 * time.Second, true, ""},
		{"a 500 is retried", onManifest(1, status(500)), 5 * time.Second, true, ""},
		{"a 503 that persists is an error", onManifest(100, status(503)), 3 * time.Second, false, "503"},
		{"a reset connection is retried", onManifest(1, reset), 5 * time.Second, true, ""},
		{"a 403 is an error", onManifest(100, status(403)), 3 * time.Second, false, "403"},
		{"a response slower than the deadline is cut off", onManifest(1, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }), time.Second, false, "deadline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := registrytest.New(t)
			want := srv.PushImage(t, "app:1")
			tgt := setup(t, srv, "app")
			srv.SetFault(tc.fault(srv))
			start := time.Now()
			res, err := resolver.New().Resolve(ctxFor(t, tc.deadline), query(tgt, "1", digestPolicy()))
			if took := time.Since(start); took > tc.deadline+time.Second {
				t.Errorf("took %s, deadline %s", took, tc.deadline)
			}
			if tc.wantOK {
				if err != nil || res.Digest != want {
					t.Fatalf("got %+v, %v; want %s", res, err, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestAGarbageManifestIsAnError(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushIndex(t, "app:1", "linux/amd64")
	tgt := setup(t, srv, "app", withPlatforms("linux/amd64"))
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			_, _ = w.Write([]byte(`{"manifests": [tru`))
			return true
		}
		return false
	})
	if _, err := resolver.New().Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", digestPolicy())); err == nil {
		t.Fatal("a truncated index was accepted")
	}
}

func TestAnExpiredTokenIsRenewedAndWrongCredentialsFail(t *testing.T) {
	srv := registrytest.New(t, registrytest.WithBearer("u", "p"))
	want := srv.PushImage(t, "app:1")
	tgt := setup(t, srv, "app", withLogin("u:p"))
	r := resolver.New()
	if _, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", digestPolicy())); err != nil {
		t.Fatal(err)
	}
	srv.RevokeTokens()
	res, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", resolver.Policy{Strategy: resolver.Digest, CacheTTL: 5 * time.Minute, Fresh: true}))
	if err != nil || res.Digest != want {
		t.Fatalf("after the token expired: %+v, %v", res, err)
	}

	bad := setup(t, srv, "app", withLogin("u:wrong"))
	_, err = resolver.New().Resolve(ctxFor(t, 5*time.Second), query(bad, "1", digestPolicy()))
	if err == nil {
		t.Fatal("wrong credentials were accepted")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestAFailedLookupServesTheLastKnownDigestAndIsNotRepeatedAtOnce(t *testing.T) {
	srv := registrytest.New(t)
	want := srv.PushImage(t, "app:1")
	tgt := setup(t, srv, "app")
	r := resolver.New(resolver.WithFailureTTL(time.Minute))
	short := resolver.Policy{Strategy: resolver.Digest, CacheTTL: time.Millisecond}
	if _, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", short)); err != nil {
		t.Fatal(err)
	}
	for r.Answerable(context.Background(), query(tgt, "1", short)) {
		runtime.Gosched() // until the answer expires
	}
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusNotFound)
		return true
	})
	srv.Reset()
	res, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", short))
	if err == nil || !res.Stale || res.Digest != want {
		t.Fatalf("got %+v, %v; want the stale digest %s with the error", res, err, want)
	}
	before := srv.Total()
	res, err = r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", short))
	if err == nil || !res.Stale {
		t.Fatalf("second failure: %+v, %v", res, err)
	}
	if srv.Total() != before {
		t.Errorf("a recent failure was retried at once (%d requests)", srv.Total()-before)
	}
}

func TestAFreshLookupBypassesTheCache(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "app:latest")
	tgt := setup(t, srv, "app")
	r := resolver.New()
	if _, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "", digestPolicy())); err != nil {
		t.Fatal(err)
	}
	moved := srv.PushImage(t, "app:latest")
	res, _ := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "", digestPolicy()))
	if res.Digest == moved {
		t.Fatal("the cached answer was not used")
	}
	res, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "", resolver.Policy{Strategy: resolver.Digest, CacheTTL: 5 * time.Minute, Fresh: true}))
	if err != nil || res.Digest != moved {
		t.Fatalf("fresh lookup: %+v, %v; want %s", res, err, moved)
	}
}

func TestCacheTTLZeroStillDedupsInFlightLookups(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "app:1")
	tgt := setup(t, srv, "app")
	release := make(chan struct{})
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead {
			<-release
		}
		return false
	})
	srv.Reset()
	r := resolver.New()
	off := resolver.Policy{Strategy: resolver.Digest}
	var wg, started sync.WaitGroup
	for range 20 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			_, _ = r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", off))
		}()
	}
	started.Wait()
	for waitingIn("resolver.(*Resolver).share(") < 20 {
		runtime.Gosched() // until every caller waits on the lookup
	}
	close(release)
	wg.Wait()
	if n := srv.Count("HEAD", "manifest"); n != 1 {
		t.Errorf("HEADs = %d, want 1", n)
	}
	srv.Reset()
	_, _ = r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", off))
	if n := srv.Count("HEAD", "manifest"); n != 1 {
		t.Errorf("with cache_ttl 0 a later lookup made %d HEADs, want 1", n)
	}
}

func TestACallerDeadlineIsNotCachedAsAFailure(t *testing.T) {
	srv := registrytest.New(t)
	want := srv.PushImage(t, "app:1")
	tgt := setup(t, srv, "app")
	slow := true
	var mu sync.Mutex
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		s := slow
		mu.Unlock()
		if s && r.Method == http.MethodHead {
			<-r.Context().Done() // slower than the caller's deadline
		}
		return false
	})
	r := resolver.New()
	if _, err := r.Resolve(ctxFor(t, 100*time.Millisecond), query(tgt, "1", digestPolicy())); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	mu.Lock()
	slow = false
	mu.Unlock()
	res, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", digestPolicy()))
	if err != nil || res.Digest != want {
		t.Fatalf("after a caller's deadline: %+v, %v", res, err)
	}
}

func TestNewestBuildAgainWithinTheTTLMakesOnlyTheChosenTagsHEAD(t *testing.T) {
	srv := registrytest.New(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, tag := range []string{"a", "b", "c"} {
		srv.PushImageCreated(t, "app:"+tag, base.Add(time.Duration(i)*time.Hour))
	}
	tgt := setup(t, srv, "app")
	r := resolver.New()
	p := resolver.Policy{Strategy: resolver.NewestBuild, CacheTTL: time.Minute}
	if res, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "", p)); err != nil || res.Tag != "c" {
		t.Fatalf("got %+v, %v", res, err)
	}
	// Another filter is another answer, but the tag list, the tags' digests and their build dates are known.
	p.IgnoreTags = []string{"c"}
	srv.Reset()
	if res, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "", p)); err != nil || res.Tag != "b" {
		t.Fatalf("got %+v, %v", res, err)
	}
	if n := srv.Count("HEAD", "manifest") + srv.Count("GET", "manifest") + srv.Count("GET", "blob"); n != 1 {
		t.Errorf("%d manifest and blob requests, want 1 (the chosen tag's HEAD): %v", n, srv.Received())
	}
}

// query is what config's Query builds for tgt: the entry's platforms
// and tagsortmode join the policy.
func query(tgt testTarget, tag string, p resolver.Policy) resolver.Query {
	p.Platforms, p.TagSortMode = tgt.platforms, tgt.tagSortMode
	return resolver.Query{Target: tgt.Target, Tag: tag, Policy: p}
}
