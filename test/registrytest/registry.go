// Package registrytest runs go-containerregistry's in-process registry behind
// a handler that authenticates (Basic, or the Docker bearer-token flow that
// Docker Hub, GHCR and ECR use), counts every request and injects faults, for
// fast unit tests of the registry client and the resolver.
package registrytest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Auth is how the server authenticates.
type Auth int

// Kinds of authentication.
const (
	Anonymous Auth = iota
	Basic
	Bearer
)

// Server is a registry for tests.
type Server struct {
	*httptest.Server
	Host string // host:port

	auth       Auth
	user, pass string
	tls        bool

	mu       sync.Mutex
	counts   map[string]int // "METHOD kind" → n, kind: ping, token, manifest, blob, tags
	tokens   map[string]time.Time
	fault    func(w http.ResponseWriter, r *http.Request) bool
	inner    http.Handler
	received []string
}

// Option configures a Server.
type Option func(*Server)

// WithBasic asks for Basic credentials.
func WithBasic(user, pass string) Option {
	return func(s *Server) { s.auth, s.user, s.pass = Basic, user, pass }
}

// WithBearer runs the Docker token flow: /token takes Basic credentials and
// gives a bearer token.
func WithBearer(user, pass string) Option {
	return func(s *Server) { s.auth, s.user, s.pass = Bearer, user, pass }
}

// WithTLS serves HTTPS with httptest's self-signed certificate
// (Server.Certificate), which clients do not trust unless told to.
func WithTLS() Option { return func(s *Server) { s.tls = true } }

// New starts a server, plain HTTP unless WithTLS; it stops when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{counts: map[string]int{}, tokens: map[string]time.Time{},
		inner: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	for _, o := range opts {
		o(s)
	}
	if s.tls {
		s.Server = httptest.NewTLSServer(s)
	} else {
		s.Server = httptest.NewServer(s)
	}
	s.Host = strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	t.Cleanup(s.Close)
	return s
}

// SetFault installs f, which sees every request first and returns true when
// it answered it. nil removes it.
func (s *Server) SetFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Count is how many requests of method to a kind of path (ping, token,
// manifest, blob, tags) arrived since the last Reset.
func (s *Server) Count(method, kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method+" "+kind]
}

// Total is how many requests arrived since the last Reset.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

// Reset zeroes the counts.
func (s *Server) Reset() {
	s.mu.Lock()
	s.counts = map[string]int{}
	s.received = nil
	s.mu.Unlock()
}

// RevokeTokens makes every bearer token issued so far invalid, as when it expires.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	s.tokens = map[string]time.Time{}
	s.mu.Unlock()
}

// SetPassword changes the password the server accepts.
func (s *Server) SetPassword(p string) {
	s.mu.Lock()
	s.pass = p
	s.mu.Unlock()
}

// Received lists "METHOD path" of every request since the last Reset.
func (s *Server) Received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.received...)
}

func kindOf(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "ping"
	case p == "/token":
		return "token"
	case strings.Contains(p, "/manifests/"):
		return "manifest"
	case strings.Contains(p, "/blobs/"):
		return "blob"
	case strings.HasSuffix(p, "/tags/list"):
		return "tags"
	}
	return "other"
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.counts[r.Method+" "+kindOf(r.URL.Path)]++
	s.received = append(s.received, r.Method+" "+r.URL.RequestURI())
	fault, user, pass := s.fault, s.user, s.pass
	s.mu.Unlock()
	if fault != nil && fault(w, r) {
		return
	}
	switch s.auth {
	case Basic:
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
	case Bearer:
		if r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
				return
			}
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			tok := hex.EncodeToString(b)
			s.mu.Lock()
			s.tokens[tok] = time.Now().Add(5 * time.Minute)
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
			return
		}
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		exp, ok := s.tokens[tok]
		s.mu.Unlock()
		if !ok || time.Now().After(exp) {
			scope := ""
			if parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/", 2); len(parts) == 2 {
				scope = fmt.Sprintf(`,scope="repository:%s:pull"`, parts[0])
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test"%s`, s.URL, scope))
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
	}
	if kindOf(r.URL.Path) == "tags" && r.URL.Query().Get("n") != "" {
		s.paginate(w, r)
		return
	}
	s.inner.ServeHTTP(w, r)
}

// paginate adds the Link header that distribution's registry sends and the
// in-process one does not, so clients must follow pages as in production.
func (s *Server) paginate(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	s.inner.ServeHTTP(rec, r)
	var body struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &body) == nil {
		if n, _ := strconv.Atoi(r.URL.Query().Get("n")); n > 0 && len(body.Tags) == n {
			w.Header().Set("Link", fmt.Sprintf(`<%s?n=%d&last=%s>; rel="next"`, r.URL.Path, n, url.QueryEscape(body.Tags[n-1])))
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// Ref names repo:tag on this server.
func (s *Server) Ref(t testing.TB, repoTag string) name.Reference {
	t.Helper()
	var opts []name.Option
	if !s.tls {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s.Host+"/"+repoTag, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// writeOpts push through the registry's handler in process: a push is the
// set-up, not what a test measures, and over a connection (TLS, under the
// race detector) it cost more than most tests. Pushes are not counted and
// need no credentials.
func (s *Server) writeOpts() []remote.Option {
	return []remote.Option{remote.WithTransport(inProcess{s.inner})}
}

// inProcess carries a request to a handler without a connection.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// PushImage pushes a random image as repo:tag and returns its digest.
func (s *Server) PushImage(t testing.TB, repoTag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s.Push(t, repoTag, img)
}

// PushImageCreated pushes a random image whose config says it was built at created.
func (s *Server) PushImageCreated(t testing.TB, repoTag string, created time.Time) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return s.Push(t, repoTag, img)
}

// Push pushes img as repo:tag and returns its digest.
func (s *Server) Push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	if err := remote.Write(s.Ref(t, repoTag), img, s.writeOpts()...); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// PushIndex pushes a multi-arch index of random images for platforms
// (os/arch[/variant]) as repo:tag and returns the index digest.
func (s *Server) PushIndex(t testing.TB, repoTag string, platforms ...string) string {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	for _, p := range platforms {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		parts := append(strings.Split(p, "/"), "", "")
		platform := &v1.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: platform}})
	}
	if err := remote.WriteIndex(s.Ref(t, repoTag), idx, s.writeOpts()...); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// Tag tags the manifest at repo:from as each of tags, as manifest PUTs
// would, but through the registry's handler in process rather than over a
// connection: tests that need thousands of tags spend their time on what
// they test, not on HTTP (or TLS) for the set-up. Nothing is counted.
func (s *Server) Tag(t testing.TB, repo, from string, tags ...string) {
	t.Helper()
	get := httptest.NewRecorder()
	s.inner.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/v2/"+repo+"/manifests/"+from, nil))
	if get.Code != http.StatusOK {
		t.Fatalf("GET %s:%s: %d %s", repo, from, get.Code, get.Body)
	}
	manifest, mediaType := get.Body.Bytes(), get.Header().Get("Content-Type")
	for _, tag := range tags {
		req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, bytes.NewReader(manifest))
		req.Header.Set("Content-Type", mediaType)
		put := httptest.NewRecorder()
		s.inner.ServeHTTP(put, req)
		if put.Code != http.StatusCreated {
			t.Fatalf("PUT %s:%s: %d %s", repo, tag, put.Code, put.Body)
		}
	}
}
