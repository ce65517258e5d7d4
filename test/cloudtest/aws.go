// Package cloudtest runs local endpoints that speak the clouds' documented
// wire protocols, for tests of the aws:, gcp: and azure: credential kinds
// with the real SDKs: no cloud emulator is installable here, and no test may
// reach the internet. Each counts the token requests it answers and knows
// which registry credentials it issued, so a registry in front of which its
// Guard sits accepts only those.
package cloudtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
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

// AWS answers STS AssumeRoleWithWebIdentity (the awsQuery protocol: a form
// POST, an XML answer) and ECR GetAuthorizationToken (awsJson1_1, selected by
// X-Amz-Target), both on one server: point the SDK at it with
// AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_ECR (SetEnv does).
type AWS struct {
	*httptest.Server
	RoleARN          string
	WebIdentityToken string // the token EKS projects into the pod

	mu       sync.Mutex
	stsLife  time.Duration
	ecrLife  time.Duration
	password string // "" : a new random password per token
	refuse   bool
	sts, ecr int
	keys     map[string]string    // access key id → session token
	issued   map[string]time.Time // ECR password → expiry
	secrets  []string
}

// NewAWS starts the endpoints; they stop when the test ends.
func NewAWS(t testing.TB) *AWS {
	t.Helper()
	a := &AWS{
		RoleARN:          "arn:aws:iam::000000000000:role/image-pin-webhook",
		WebIdentityToken: "eyJhbGciOiJSUzI1NiJ9." + random(24) + ".sig",
		stsLife:          time.Hour, ecrLife: 12 * time.Hour,
		keys: map[string]string{}, issued: map[string]time.Time{},
	}
	a.secrets = append(a.secrets, a.WebIdentityToken)
	a.Server = httptest.NewServer(a)
	t.Cleanup(a.Close)
	return a
}

// SetLifetimes sets how long STS credentials and ECR tokens last.
func (a *AWS) SetLifetimes(sts, ecr time.Duration) {
	a.mu.Lock()
	a.stsLife, a.ecrLife = sts, ecr
	a.mu.Unlock()
}

// SetPassword makes every ECR token carry p, for registries with a fixed
// htpasswd file.
func (a *AWS) SetPassword(p string) {
	a.mu.Lock()
	a.password = p
	a.mu.Unlock()
}

// Refuse makes STS refuse the web identity, as when the role's trust policy
// does not name the service account.
func (a *AWS) Refuse(refuse bool) {
	a.mu.Lock()
	a.refuse = refuse
	a.mu.Unlock()
}

// Counts returns how many AssumeRoleWithWebIdentity and
// GetAuthorizationToken requests were answered.
func (a *AWS) Counts() (sts, ecr int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sts, a.ecr
}

// Secrets lists every secret value the endpoints handed out or accepted:
// none may appear in any output.
func (a *AWS) Secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.secrets...)
}

// Valid reports whether user:pass is an unexpired ECR token issued here.
func (a *AWS) Valid(user, pass string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.issued[pass]
	return ok && user == "AWS" && time.Now().Before(exp)
}

// Expire makes every ECR token issued so far invalid, as when they run out.
func (a *AWS) Expire() {
	a.mu.Lock()
	a.issued = map[string]time.Time{}
	a.mu.Unlock()
}

// Env is the environment EKS gives a pod with IRSA (AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE, the token written to a file in dir as the
// kubelet projects it), pointed at these endpoints, with every other source
// of the SDK's default chain switched off.
func (a *AWS) Env(t testing.TB, dir string) map[string]string {
	t.Helper()
	tokenDir := filepath.Join(dir, "eks.amazonaws.com", "serviceaccount")
	if err := os.MkdirAll(tokenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(tokenDir, "token")
	if err := os.WriteFile(tokenFile, []byte(a.WebIdentityToken), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"AWS_ROLE_ARN":                           a.RoleARN,
		"AWS_WEB_IDENTITY_TOKEN_FILE":            tokenFile,
		"AWS_ENDPOINT_URL_STS":                   a.URL,
		"AWS_ENDPOINT_URL_ECR":                   a.URL,
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_CONFIG_FILE":                        empty,
		"AWS_SHARED_CREDENTIALS_FILE":            empty,
		"AWS_ACCESS_KEY_ID":                      "",
		"AWS_SECRET_ACCESS_KEY":                  "",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_PROFILE":                            "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "",
		"AWS_MAX_ATTEMPTS":                       "1",
	}
}

// SetEnv sets Env for the rest of the test (not parallel).
func (a *AWS) SetEnv(t testing.TB) {
	t.Helper()
	for k, v := range a.Env(t, t.TempDir()) {
		t.Setenv(k, v)
	}
}

// Guard is a registrytest fault: it answers 401 unless the request carries
// a valid ECR token as Basic credentials, as ECR does.
func (a *AWS) Guard(w http.ResponseWriter, r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok && a.Valid(u, p) {
		return false
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="https://ecr.local/",service="ecr.amazonaws.com"`)
	http.Error(w, `{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}`, http.StatusUnauthorized)
	return true
}

func (a *AWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		a.ecrToken(w, r, target)
		return
	}
	a.assumeRole(w, r)
}

type stsError struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Type    string   `xml:"Error>Type"`
	Code    string   `xml:"Error>Code"`
	Message string   `xml:"Error>Message"`
	ID      string   `xml:"RequestId"`
}

func (a *AWS) assumeRole(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fail := func(code, msg string) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		_ = xml.NewEncoder(w).Encode(stsError{Type: "Sender", Code: code, Message: msg, ID: random(8)})
	}
	a.mu.Lock()
	a.sts++
	refuse, life := a.refuse, a.stsLife
	a.mu.Unlock()
	switch {
	case r.Form.Get("Action") != "AssumeRoleWithWebIdentity" || r.Form.Get("Version") != "2011-06-15":
		fail("InvalidAction", "only AssumeRoleWithWebIdentity is served here")
		return
	case r.Form.Get("RoleArn") != a.RoleARN:
		fail("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
		return
	case r.Form.Get("WebIdentityToken") != a.WebIdentityToken:
		fail("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider")
		return
	case refuse:
		fail("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
		return
	}
	akid, secret, session := "ASIA"+strings.ToUpper(random(8)), random(20), random(40)
	a.mu.Lock()
	a.keys[akid] = session
	a.secrets = append(a.secrets, secret, session)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:image-pin-system:image-pin-webhook</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROA000000000000:%s</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>%s</SecretAccessKey>
      <SessionToken>%s</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <Provider>arn:aws:iam::000000000000:oidc-provider/oidc.eks.local</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`,
		strings.Replace(a.RoleARN, ":role/", ":assumed-role/", 1), r.Form.Get("RoleSessionName"), r.Form.Get("RoleSessionName"),
		akid, secret, session, time.Now().Add(life).UTC().Format(time.RFC3339), random(8))
}

func (a *AWS) ecrToken(w http.ResponseWriter, r *http.Request, target string) {
	fail := func(status int, typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
	}
	if target != "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" {
		fail(http.StatusBadRequest, "UnknownOperationException", "only GetAuthorizationToken is served here")
		return
	}
	// A SigV4 request names its access key in the credential scope
	// (AKID/date/region/ecr/aws4_request) and carries the session token.
	auth := r.Header.Get("Authorization")
	_, cred, _ := strings.Cut(auth, "Credential=")
	akid, scope, _ := strings.Cut(cred, "/")
	a.mu.Lock()
	a.ecr++
	session, known := a.keys[akid]
	life, fixed := a.ecrLife, a.password
	a.mu.Unlock()
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !known || r.Header.Get("X-Amz-Security-Token") != session ||
		!strings.Contains(scope, "/ecr/aws4_request") {
		fail(http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	pass := fixed
	if pass == "" {
		pass = random(32)
	}
	exp := time.Now().Add(life)
	a.mu.Lock()
	a.issued[pass] = exp
	a.secrets = append(a.secrets, pass)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{"authorizationData": []map[string]any{{
		"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:" + pass)),
		"expiresAt":          float64(exp.UnixMilli()) / 1000,
		"proxyEndpoint":      "https://000000000000.dkr.ecr.eu-west-1.amazonaws.com",
	}}})
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
