package cloudtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// GCP is a GCE/GKE metadata server: the one Google's libraries find through
// GCE_METADATA_HOST, answering the service account token request
// (GET /computeMetadata/v1/instance/service-accounts/default/token with
// Metadata-Flavor: Google) and the project id.
type GCP struct {
	*httptest.Server
	Host string // host:port, for GCE_METADATA_HOST

	mu     sync.Mutex
	life   time.Duration
	refuse bool
	tokens int
	issued map[string]time.Time
}

// NewGCP starts the metadata server; it stops when the test ends.
func NewGCP(t testing.TB) *GCP {
	t.Helper()
	g := &GCP{life: time.Hour, issued: map[string]time.Time{}}
	g.Server = httptest.NewServer(g)
	g.Host = strings.TrimPrefix(g.URL, "http://")
	t.Cleanup(g.Close)
	return g
}

// SetEnv points Google's libraries at the server and hides every other
// source of application default credentials, for the rest of the test.
func (g *GCP) SetEnv(t testing.TB) {
	t.Helper()
	t.Setenv("GCE_METADATA_HOST", g.Host)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
}

// SetLifetime sets how long tokens last.
func (g *GCP) SetLifetime(d time.Duration) {
	g.mu.Lock()
	g.life = d
	g.mu.Unlock()
}

// Refuse makes the token request fail, as when the Kubernetes service
// account is not bound to a Google one.
func (g *GCP) Refuse(refuse bool) {
	g.mu.Lock()
	g.refuse = refuse
	g.mu.Unlock()
}

// Tokens is how many tokens were requested.
func (g *GCP) Tokens() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tokens
}

// Secrets lists the tokens issued.
func (g *GCP) Secrets() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for t := range g.issued {
		out = append(out, t)
	}
	return out
}

// Guard is a registrytest fault: 401 unless the request carries an issued,
// unexpired token as the password of oauth2accesstoken.
func (g *GCP) Guard(w http.ResponseWriter, r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok && u == "oauth2accesstoken" {
		g.mu.Lock()
		exp, ok := g.issued[p]
		g.mu.Unlock()
		if ok && time.Now().Before(exp) {
			return false
		}
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="https://gcr.local/"`)
	http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	return true
}

func (g *GCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Metadata-Flavor", "Google")
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "Missing required header: Metadata-Flavor", http.StatusForbidden)
		return
	}
	switch r.URL.Path {
	case "/computeMetadata/v1/project/project-id":
		_, _ = w.Write([]byte("image-pin-test"))
	case "/computeMetadata/v1/instance/service-accounts/default/token":
		g.mu.Lock()
		g.tokens++
		refuse, life := g.refuse, g.life
		g.mu.Unlock()
		if refuse {
			http.Error(w, "Your Kubernetes service account (image-pin-system/image-pin-webhook) is not annotated with a target Google service account", http.StatusNotFound)
			return
		}
		tok := "ya29." + random(32)
		g.mu.Lock()
		g.issued[tok] = time.Now().Add(life)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": int(life.Seconds()), "token_type": "Bearer"})
	default:
		http.NotFound(w, r)
	}
}
