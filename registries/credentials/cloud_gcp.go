package credentials

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// gcpLogin is the gcp: kind, for Artifact Registry (*-docker.pkg.dev) and
// GCR: Google application default credentials (GOOGLE_APPLICATION_CREDENTIALS,
// including a workload identity federation file; gcloud's ADC file; the
// metadata server, which serves GKE Workload Identity), whose OAuth access
// token the registry takes as the password of user oauth2accesstoken.
type gcpLogin struct {
	mu sync.Mutex
	ts oauth2.TokenSource // made on first login
}

// gcpScope is what docker-credential-gcr asks for.
const gcpScope = "https://www.googleapis.com/auth/cloud-platform"

func newGCPLogin(map[string]string, string) (cloudLogin, error) { return &gcpLogin{}, nil }

func (l *gcpLogin) source(ctx context.Context) (oauth2.TokenSource, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ts != nil {
		return l.ts, nil
	}
	creds, err := google.FindDefaultCredentialsWithParams(ctx, google.CredentialsParams{
		Scopes: []string{gcpScope},
		// The cloud token cache decides when to ask again; the library's
		// own reuse would hand the refresher the token it already has.
		EarlyTokenRefresh: 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("finding Google application default credentials: %w", err)
	}
	l.ts = creds.TokenSource
	return l.ts, nil
}

func (l *gcpLogin) login(ctx context.Context, host string) (authn.AuthConfig, time.Time, error) {
	ts, err := l.source(ctx)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	tok, err := tokenWithContext(ctx, ts)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("Google access token: %w", err)
	}
	if tok.AccessToken == "" {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("Google access token: empty")
	}
	exp := tok.Expiry
	if exp.IsZero() {
		exp = time.Now().Add(time.Hour) // no expiry given: Google's tokens last an hour
	}
	return authn.AuthConfig{Username: "oauth2accesstoken", Password: tok.AccessToken}, exp, nil
}

// tokenWithContext bounds ts.Token, which takes no context, by ctx: the
// call goes on in its goroutine (bounded by the HTTP client's own timeouts)
// but the caller does not wait past ctx.
func tokenWithContext(ctx context.Context, ts oauth2.TokenSource) (*oauth2.Token, error) {
	type result struct {
		tok *oauth2.Token
		err error
	}
	ch := make(chan result, 1)
	go func() {
		tok, err := ts.Token()
		ch <- result{tok, err}
	}()
	select {
	case r := <-ch:
		return r.tok, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
