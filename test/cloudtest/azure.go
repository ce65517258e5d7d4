package cloudtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Azure is an Entra ID token endpoint (POST /TENANT/oauth2/v2.0/token, client
// credentials with a federated client assertion) and, through Guard, the ACR
// side of a registry: POST /oauth2/exchange (Entra ID token → ACR refresh
// token), GET /oauth2/token (refresh token as Basic password → access
// token) and the Bearer challenge on /v2/.
type Azure struct {
	*httptest.Server
	Tenant, Client string
	Federated      string // the token the kubelet projects

	mu        sync.Mutex
	refuse    bool
	redirect  string // where /oauth2/exchange answers 307 to; "" for none
	life      time.Duration
	aadCalls  int
	exchanges int
	aad       map[string]bool
	refresh   map[string]time.Time
	access    map[string]bool
	secrets   []string
}

// NewAzure starts the Entra ID endpoint; it stops when the test ends.
func NewAzure(t testing.TB) *Azure {
	t.Helper()
	a := &Azure{Tenant: "00000000-0000-0000-0000-0000000000aa", Client: "00000000-0000-0000-0000-0000000000cc",
		Federated: "eyJhbGciOiJSUzI1NiJ9." + random(24) + ".sig", life: 3 * time.Hour,
		aad: map[string]bool{}, refresh: map[string]time.Time{}, access: map[string]bool{}}
	a.secrets = append(a.secrets, a.Federated)
	a.Server = httptest.NewServer(http.HandlerFunc(a.entra))
	t.Cleanup(a.Close)
	return a
}

// SetEnv is what the azure-workload-identity webhook gives a pod, for the
// rest of the test.
func (a *Azure) SetEnv(t testing.TB) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte(a.Federated), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZURE_TENANT_ID", a.Tenant)
	t.Setenv("AZURE_CLIENT_ID", a.Client)
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
	t.Setenv("AZURE_AUTHORITY_HOST", a.URL+"/")
}

// SetLifetime sets how long ACR refresh tokens last.
func (a *Azure) SetLifetime(d time.Duration) {
	a.mu.Lock()
	a.life = d
	a.mu.Unlock()
}

// Refuse makes Entra ID refuse the federated token, as when no federated
// credential names the service account.
func (a *Azure) Refuse(refuse bool) {
	a.mu.Lock()
	a.refuse = refuse
	a.mu.Unlock()
}

// RedirectExchange makes the registry answer /oauth2/exchange with a 307
// to the same path at base (scheme://host), as a hostile or misconfigured
// registry might, to learn the Entra ID token the form holds.
func (a *Azure) RedirectExchange(base string) {
	a.mu.Lock()
	a.redirect = base
	a.mu.Unlock()
}

// Counts returns the Entra ID token requests and the ACR exchanges.
func (a *Azure) Counts() (aad, exchanges int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.aadCalls, a.exchanges
}

// Secrets lists every token handed out or accepted.
func (a *Azure) Secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.secrets...)
}

func (a *Azure) entra(w http.ResponseWriter, r *http.Request) {
	fail := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost || r.URL.Path != "/"+a.Tenant+"/oauth2/v2.0/token" || r.ParseForm() != nil {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.aadCalls++
	refuse := a.refuse
	a.mu.Unlock()
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials" || f.Get("client_id") != a.Client ||
		f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || !strings.HasSuffix(f.Get("scope"), "/.default"):
		fail("invalid_request", "AADSTS900144: The request body must contain the following parameter.")
		return
	case f.Get("client_assertion") != a.Federated || refuse:
		fail("invalid_client", "AADSTS70021: No matching federated identity record found for presented assertion.")
		return
	}
	tok := "aad." + random(24)
	a.mu.Lock()
	a.aad[tok] = true
	a.secrets = append(a.secrets, tok)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": tok})
}

func jwt(exp time.Time) string {
	payload, _ := json.Marshal(map[string]any{"exp": exp.Unix(), "grant_type": "refresh_token", "jti": random(8)})
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + "." + random(16)
}

// Guard is a registrytest fault that makes the registry an ACR: it answers
// the exchange and token requests and lets /v2/ requests through only with
// an access token it gave.
func (a *Azure) Guard(w http.ResponseWriter, r *http.Request) bool {
	host := r.Host
	switch r.URL.Path {
	case "/oauth2/exchange":
		a.mu.Lock()
		redirect := a.redirect
		a.mu.Unlock()
		if redirect != "" {
			http.Redirect(w, r, redirect+r.URL.Path, http.StatusTemporaryRedirect)
			return true
		}
		_ = r.ParseForm()
		a.mu.Lock()
		a.exchanges++
		ok := a.aad[r.PostForm.Get("access_token")] && r.PostForm.Get("grant_type") == "access_token" &&
			r.PostForm.Get("service") == host && r.PostForm.Get("tenant") == a.Tenant
		life := a.life
		a.mu.Unlock()
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"aad access token is invalid"}]}`))
			return true
		}
		rt := jwt(time.Now().Add(life))
		a.mu.Lock()
		a.refresh[rt] = time.Now().Add(life)
		a.secrets = append(a.secrets, rt)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"refresh_token": rt})
		return true
	case "/oauth2/token":
		u, p, _ := r.BasicAuth()
		if r.Method == http.MethodPost {
			_ = r.ParseForm()
			u, p = "00000000-0000-0000-0000-000000000000", r.PostForm.Get("refresh_token")
		}
		a.mu.Lock()
		exp, ok := a.refresh[p]
		a.mu.Unlock()
		if u != "00000000-0000-0000-0000-000000000000" || !ok || time.Now().After(exp) {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return true
		}
		at := "acr." + random(16)
		a.mu.Lock()
		a.access[at] = true
		a.secrets = append(a.secrets, at)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": at})
		return true
	}
	a.mu.Lock()
	ok := a.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	a.mu.Unlock()
	if ok {
		return false
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/oauth2/token",service="%s"`, host, host))
	http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	return true
}
