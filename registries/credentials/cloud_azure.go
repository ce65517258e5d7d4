package credentials

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// azureLogin is the azure: kind, for ACR (*.azurecr.io): Azure workload
// identity, as `az acr login` does it. The federated token the kubelet
// projects (AZURE_FEDERATED_TOKEN_FILE) is exchanged at Entra ID for an
// access token (client credentials with a client assertion), which the
// registry's /oauth2/exchange turns into an ACR refresh token, used as the
// password of the all-zero user. Two plain form posts, documented by Entra ID
// and ACR, rather than azidentity and MSAL, which would add a dozen modules
// for the same two requests.
type azureLogin struct {
	tenant, client string // "" : from AZURE_TENANT_ID, AZURE_CLIENT_ID
	http           *http.Client
}

// acrUser is the user name ACR expects with a refresh token.
const acrUser = "00000000-0000-0000-0000-000000000000"

// azureScope is the audience `az acr login` asks Entra ID for.
const azureScope = "https://management.azure.com/.default"

// acrDomains are the registry domains of Azure's clouds: public, China
// (21Vianet) and US Government. The Entra ID token, whose audience is
// Azure's management API, goes only to hosts under them unless the entry
// says allowhost=true.
var acrDomains = []string{".azurecr.io", ".azurecr.cn", ".azurecr.us"}

// isACRHost reports whether host (with or without a port) is under one of
// acrDomains.
func isACRHost(host string) bool {
	h := strings.ToLower(host)
	if sh, _, err := net.SplitHostPort(h); err == nil {
		h = sh
	}
	for _, d := range acrDomains {
		if strings.HasSuffix(h, d) && len(h) > len(d) {
			return true
		}
	}
	return false
}

func newAzureLogin(opts map[string]string, host string) (cloudLogin, error) {
	switch opts["allowhost"] {
	case "", "false":
		if !isACRHost(host) {
			return nil, fmt.Errorf("azure: %s is not a registry of Azure's clouds (*.azurecr.io, *.azurecr.cn, *.azurecr.us): the login would send it an Entra ID token for Azure's management API; write azure:allowhost=true to send it anyway", host)
		}
	case "true":
	default:
		return nil, fmt.Errorf("azure: option \"allowhost\" must be true or false")
	}
	return &azureLogin{tenant: opts["tenant"], client: opts["client"], http: &http.Client{Timeout: 20 * time.Second, CheckRedirect: sameHostOnly}}, nil
}

// sameHostOnly refuses a redirect to another host or scheme: the forms the
// login posts hold the client assertion and the Entra ID token, and a 307
// or 308 would send them again to wherever the answer points.
func sameHostOnly(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		return fmt.Errorf("redirected to %s://%s: refused, the login sends its token only to %s", req.URL.Scheme, req.URL.Host, first.Host)
	}
	if len(via) >= 3 {
		return fmt.Errorf("more than 3 redirects")
	}
	return nil
}

func (l *azureLogin) login(ctx context.Context, host string) (authn.AuthConfig, time.Time, error) {
	tenant, client := l.tenant, l.client
	if tenant == "" {
		tenant = os.Getenv("AZURE_TENANT_ID")
	}
	if client == "" {
		client = os.Getenv("AZURE_CLIENT_ID")
	}
	file := os.Getenv("AZURE_FEDERATED_TOKEN_FILE")
	if tenant == "" || client == "" || file == "" {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("Azure workload identity: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE must be set (label the pod azure.workload.identity/use=true, or the chart's cloud.azure.projectToken)")
	}
	// Re-read each time: the kubelet rotates the projected token.
	assertion, err := os.ReadFile(file)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("Azure workload identity: reading the federated token file: %v", err)
	}
	authority := os.Getenv("AZURE_AUTHORITY_HOST")
	if authority == "" {
		authority = "https://login.microsoftonline.com/"
	}
	var aad struct {
		AccessToken string `json:"access_token"`
	}
	err = l.post(ctx, strings.TrimRight(authority, "/")+"/"+url.PathEscape(tenant)+"/oauth2/v2.0/token", url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {client},
		"scope":                 {azureScope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {strings.TrimSpace(string(assertion))},
	}, &aad)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("Entra ID token for client %s in tenant %s: %w", client, tenant, err)
	}
	var acr struct {
		RefreshToken string `json:"refresh_token"`
	}
	err = l.post(ctx, l.scheme(host)+"://"+host+"/oauth2/exchange", url.Values{
		"grant_type":   {"access_token"},
		"service":      {host},
		"tenant":       {tenant},
		"access_token": {aad.AccessToken},
	}, &acr)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ACR token exchange at %s: %w", host, err)
	}
	exp, err := jwtExpiry(acr.RefreshToken)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("ACR token exchange at %s: the refresh token %v", host, err)
	}
	return authn.AuthConfig{Username: acrUser, Password: acr.RefreshToken}, exp, nil
}

// scheme is https but for loopback registries, which tests (and local
// mirrors) run on plain HTTP.
func (l *azureLogin) scheme(host string) string {
	if strings.HasPrefix(host, "127.0.0.1:") || strings.HasPrefix(host, "localhost:") || strings.HasPrefix(host, "[::1]:") {
		return "http"
	}
	return "https"
}

// post sends a form and decodes a JSON answer into out. An error carries
// the status and the OAuth error code and description, never the form.
func (l *azureLogin) post(ctx context.Context, u string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := l.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL
		}
		return fmt.Errorf("POST %s: %w", req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("POST %s: reading the answer: %w", req.URL.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			return fmt.Errorf("POST %s: %s", req.URL.Redacted(), resp.Status)
		}
		return fmt.Errorf("POST %s: %s: %s: %s", req.URL.Redacted(), resp.Status, e.Error, firstLine(e.Description))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("POST %s: the answer is not JSON", req.URL.Redacted())
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// jwtExpiry reads the exp claim of a JWT without checking its signature: the
// registry that issued it checks it, this only decides when to ask again.
func jwtExpiry(tok string) (time.Time, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, fmt.Errorf("is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, fmt.Errorf("is not a JWT: its payload is not base64url")
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == 0 {
		return time.Time{}, fmt.Errorf("has no exp claim")
	}
	return time.Unix(int64(claims.Exp), 0), nil
}
