package registries_test

import (
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/test/cloudtest"
)

func newGCR(t *testing.T) (*cloudSetup, *cloudtest.GCP) {
	t.Helper()
	gcp := cloudtest.NewGCP(t)
	gcp.SetEnv(t)
	return newCloud(t, "gcp:", gcp.Guard), gcp
}

func TestOneGoogleTokenServesAThousandResolutions(t *testing.T) {
	s, gcp := newGCR(t)
	s.headMany(t, 1000)
	if n := gcp.Tokens(); n != 1 {
		t.Errorf("the metadata server gave %d tokens, want 1", n)
	}
	s.stop()
	cloudLeaks(t)
}

func TestAGoogleTokenIsRefreshedBeforeItExpiresWithNoCallerWaiting(t *testing.T) {
	s, gcp := newGCR(t)
	gcp.SetLifetime(2 * time.Second)
	s.refreshedWithNoCaller(t, gcp.Tokens)
	if n := gcp.Tokens(); n != 2 {
		t.Errorf("%d tokens, want 2 (the login and one refresh)", n)
	}
	s.stop()
	cloudLeaks(t)
}

func TestAGoogleIdentityThatIsNotBoundIsAnErrorThatHoldsNoSecret(t *testing.T) {
	s, gcp := newGCR(t)
	gcp.Refuse(true)
	err := s.head(ctx(t), t)
	if err == nil || !strings.Contains(err.Error(), "credentials from gcp:") || !strings.Contains(err.Error(), "Google access token") {
		t.Fatalf("want an error naming gcp:, got %v", err)
	}
	if n := s.reg.Total(); n != 0 {
		t.Errorf("the registry saw %d requests", n)
	}
	gcp.Refuse(false)
	if err := s.head(ctx(t), t); err != nil {
		t.Fatal(err)
	}
	for _, secret := range gcp.Secrets() {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error holds a token: %q", err)
		}
	}
	s.stop()
	cloudLeaks(t)
}
