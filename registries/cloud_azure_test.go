package registries_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/test/cloudtest"
)

func newACR(t *testing.T) (*cloudSetup, *cloudtest.Azure) {
	t.Helper()
	az := cloudtest.NewAzure(t)
	az.SetEnv(t)
	// The test registry is on a loopback address, not an ACR host.
	return newCloud(t, "azure:allowhost=true", az.Guard), az
}

func TestOneACRRefreshTokenServesAThousandResolutions(t *testing.T) {
	s, az := newACR(t)
	s.headMany(t, 1000)
	if aad, ex := az.Counts(); aad != 1 || ex != 1 {
		t.Errorf("Entra ID token requests %d, exchanges %d, want 1 and 1", aad, ex)
	}
	s.stop()
	cloudLeaks(t)
}

func TestAnACRRefreshTokenIsRefreshedBeforeItExpiresWithNoCallerWaiting(t *testing.T) {
	s, az := newACR(t)
	// JWT exp has whole seconds: a 3s token may be used for 2.x seconds.
	az.SetLifetime(3 * time.Second)
	s.refreshedWithNoCaller(t, func() int { _, ex := az.Counts(); return ex })
	if _, ex := az.Counts(); ex != 2 {
		t.Errorf("%d exchanges, want 2 (the login and one refresh)", ex)
	}
	s.stop()
	cloudLeaks(t)
}

func TestARefusedFederatedTokenIsAnErrorThatHoldsNoSecret(t *testing.T) {
	s, az := newACR(t)
	az.Refuse(true)
	err := s.head(ctx(t), t)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"credentials from azure:", "Entra ID token", "invalid_client", "AADSTS70021"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, secret := range az.Secrets() {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error holds a secret: %q", err)
		}
	}
	if _, ex := az.Counts(); ex != 0 {
		t.Errorf("%d exchanges without an Entra ID token", ex)
	}
	az.Refuse(false)
	if err := s.head(ctx(t), t); err != nil {
		t.Fatalf("after the federated credential was added: %v", err)
	}
	s.stop()
	cloudLeaks(t)
}

func TestAzureWithoutWorkloadIdentityNamesWhatIsMissing(t *testing.T) {
	s, _ := newACR(t)
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", "")
	err := s.head(ctx(t), t)
	if err == nil || !strings.Contains(err.Error(), "AZURE_FEDERATED_TOKEN_FILE") {
		t.Fatalf("want an error naming the missing variable, got %v", err)
	}
	s.stop()
	cloudLeaks(t)
}

// A registry that answers the exchange with a 307 or 308 to another host
// would have the client post the form, Entra ID token and all, there: the
// login refuses the redirect, says so, and the other host gets nothing.
func TestTheACRExchangeNeverFollowsARedirectToAnotherHost(t *testing.T) {
	var mu sync.Mutex
	var stolen []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		stolen = append(stolen, r.URL.Path+" "+string(body))
		mu.Unlock()
		http.Error(w, "{}", http.StatusOK)
	}))
	t.Cleanup(elsewhere.Close)
	s, az := newACR(t)
	az.RedirectExchange(elsewhere.URL)
	err := s.head(ctx(t), t)
	if err == nil || !strings.Contains(err.Error(), "redirected to "+elsewhere.URL+": refused") {
		t.Fatalf("err = %v, want the redirect refused", err)
	}
	for _, secret := range az.Secrets() {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error holds a secret: %q", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stolen) != 0 {
		t.Errorf("the other host got %d requests: %q", len(stolen), stolen)
	}
	s.stop()
	cloudLeaks(t)
}
