package registries_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.uber.org/goleak"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/test/cloudtest"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// cloudLeaks checks, once the test's cloud refresher stopped, that no
// refresher goroutine is left; idle keep-alive connections may stay.
func cloudLeaks(t *testing.T) {
	t.Helper()
	goleak.VerifyNone(t,
		goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// cloudSetup is a registry that accepts only what a cloud's local
// endpoints issued (guard), with one entry whose credentials are a cloud kind.
type cloudSetup struct {
	reg   *registrytest.Server
	creds *credentials.Cache
	stop  func() // the cloud refresher
	set   *registries.Set
}

// newCloud holds no failed login, so that a test can fix the identity and
// log in at once; TestAFailedCloudLoginIsHeldSoLookupsDoNotLogInAgain holds them.
func newCloud(t *testing.T, credsSource string, guard func(http.ResponseWriter, *http.Request) bool, mod ...func(*registries.Entry)) *cloudSetup {
	t.Helper()
	return newCloudWith(t, credsSource, guard, 0, mod...)
}

func newCloudWith(t *testing.T, credsSource string, guard func(http.ResponseWriter, *http.Request) bool, hold time.Duration, mod ...func(*registries.Entry)) *cloudSetup {
	t.Helper()
	s := &cloudSetup{reg: registrytest.New(t)}
	s.reg.PushImage(t, "team/app:1")
	s.reg.Reset()
	s.reg.SetFault(guard)
	e := entry(t, "cloud", s.reg.URL, s.reg.Host, append([]func(*registries.Entry){func(e *registries.Entry) {
		e.Credentials = source(t, credsSource)
		e.Limit = 100000
	}}, mod...)...)
	s.creds = credentials.New(credentials.WithFailureHold(hold))
	s.stop = startRefresher(t, s.creds)
	var err error
	if s.set, err = registries.NewSet([]*registries.Entry{e}, registries.WithCredentials(s.creds)); err != nil {
		t.Fatal(err)
	}
	return s
}

// headMany resolves n times, each of which must succeed.
func (s *cloudSetup) headMany(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := s.head(ctx(t), t); err != nil {
			t.Fatalf("resolution %d: %v", i, err)
		}
	}
}

// refreshedWithNoCaller uses the entry once, then waits, with no lookup
// running, until the cloud issued another credential (issued counts them):
// the refresher logged in before the first ran out, with no caller waiting.
// A lookup then finds the new credential ready: it logs in no more and is
// not refused (a refusal would show as a second ping). That no caller ever
// waits is timed exactly in package credentials
// (TestACloudTokenIsRefreshedBeforeItExpiresAndNoCallerWaits).
func (s *cloudSetup) refreshedWithNoCaller(t *testing.T, issued func() int) {
	t.Helper()
	if err := s.head(ctx(t), t); err != nil {
		t.Fatal(err)
	}
	first, pings := issued(), s.reg.Count("GET", "ping")
	// Generous: the refresh is due at 0.75 of the credential's use, and
	// this waits on the condition, not on the clock.
	for deadline := time.Now().Add(30 * time.Second); issued() == first; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh 30s after the first login (%d issued)", issued())
		}
	}
	refreshed := issued()
	if err := s.head(ctx(t), t); err != nil {
		t.Fatal(err)
	}
	if n := issued(); n != refreshed {
		t.Errorf("the lookup after the refresh logged in again (%d issued, %d after the refresh)", n, refreshed)
	}
	if n := s.reg.Count("GET", "ping"); n != pings {
		t.Errorf("the lookup after the refresh pinged again (%d pings, %d before): its credential was refused", n, pings)
	}
}

func (s *cloudSetup) head(ctx context.Context, t *testing.T) error {
	t.Helper()
	img, _ := imageref.ParseImage(s.reg.Host + "/team/app:1")
	tgt, ok := s.set.Match(img, "default")
	if !ok {
		t.Fatal("no entry matches")
	}
	repo, err := tgt.Client.Repository(tgt.Repository)
	if err != nil {
		t.Fatal(err)
	}
	return tgt.Do(ctx, repo, func(rt http.RoundTripper) error {
		_, err := remote.Head(repo.Tag("1"), remote.WithTransport(rt), remote.WithContext(ctx))
		return err
	})
}

// ecrSetup is an ECR-shaped registry behind local STS and ECR endpoints,
// with the environment IRSA gives a pod.
type ecrSetup struct {
	*cloudSetup
	aws *cloudtest.AWS
}

func newECR(t *testing.T, credsSource string, mod ...func(*registries.Entry)) *ecrSetup {
	t.Helper()
	aws := cloudtest.NewAWS(t)
	aws.SetEnv(t)
	return &ecrSetup{cloudSetup: newCloud(t, credsSource, aws.Guard, mod...), aws: aws}
}

func TestOneECRTokenServesAThousandResolutions(t *testing.T) {
	s := newECR(t, "aws:region=eu-west-1")
	s.headMany(t, 1000)
	if sts, ecr := s.aws.Counts(); sts != 1 || ecr != 1 {
		t.Errorf("token requests: sts=%d ecr=%d, want 1 and 1", sts, ecr)
	}
	if n := s.reg.Count("HEAD", "manifest"); n != 1000 {
		t.Errorf("registry saw %d manifest requests, want 1000", n)
	}
	s.stop()
	cloudLeaks(t)
}

func TestAnECRTokenIsRefreshedBeforeItExpiresWithNoCallerWaiting(t *testing.T) {
	s := newECR(t, "aws:region=eu-west-1")
	// A 2s token is used for 1.8s (a tenth of its life as margin) and
	// refreshed in the background after 1.35s.
	s.aws.SetLifetimes(time.Hour, 2*time.Second)
	s.refreshedWithNoCaller(t, func() int { _, ecr := s.aws.Counts(); return ecr })
	sts, ecr := s.aws.Counts()
	if ecr != 2 {
		t.Errorf("GetAuthorizationToken ran %d times, want 2 (the login and one refresh)", ecr)
	}
	if sts != 1 {
		t.Errorf("AssumeRoleWithWebIdentity ran %d times, want 1 (the STS credentials last an hour)", sts)
	}
	if n := s.reg.Count("HEAD", "manifest"); n != 2 {
		t.Errorf("%d resolutions ran, want 2", n)
	}
	s.stop()
	cloudLeaks(t)
}

func TestAFailedCloudLoginIsHeldSoLookupsDoNotLogInAgain(t *testing.T) {
	aws := cloudtest.NewAWS(t)
	aws.SetEnv(t)
	s := &ecrSetup{cloudSetup: newCloudWith(t, "aws:region=eu-west-1", aws.Guard, credentials.DefaultFailureHold), aws: aws}
	aws.Refuse(true)
	for i := 0; i < 20; i++ {
		if err := s.head(ctx(t), t); err == nil {
			t.Fatalf("lookup %d: want the refusal", i)
		}
	}
	if sts, _ := aws.Counts(); sts != 1 {
		t.Errorf("STS was asked %d times by 20 lookups, want 1 (the failure is held for %s)", sts, credentials.DefaultFailureHold)
	}
	s.stop()
	cloudLeaks(t)
}

func TestARefusedWebIdentityIsAnErrorThatHoldsNoSecret(t *testing.T) {
	s := newECR(t, "aws:region=eu-west-1")
	s.aws.Refuse(true)
	err := s.head(ctx(t), t)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"credentials from aws:region=eu-west-1", "AssumeRoleWithWebIdentity", "AccessDenied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, secret := range s.aws.Secrets() {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error holds a secret: %q", err)
		}
	}
	if n := s.reg.Total(); n != 0 {
		t.Errorf("the registry saw %d requests without a credential to send", n)
	}
	// Once the role trusts the webhook again, the next resolution logs in.
	s.aws.Refuse(false)
	if err := s.head(ctx(t), t); err != nil {
		t.Fatalf("after the trust was fixed: %v", err)
	}
	s.stop()
	cloudLeaks(t)
}

func TestAnECRTokenTheRegistryRefusesIsDroppedAndFetchedOnce(t *testing.T) {
	s := newECR(t, "aws:region=eu-west-1")
	if err := s.head(ctx(t), t); err != nil {
		t.Fatal(err)
	}
	s.aws.Expire() // the registry no longer accepts it, though its expiry is hours away
	if err := s.head(ctx(t), t); err != nil {
		t.Fatalf("after the token was revoked: %v", err)
	}
	if _, ecr := s.aws.Counts(); ecr != 2 {
		t.Errorf("GetAuthorizationToken ran %d times, want 2", ecr)
	}
	// A registry that refuses every token: an error naming the status, no
	// token in it, and no further login: a refused source is fetched again
	// at most once per refetch interval (30s), and it was just fetched.
	s.reg.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("WWW-Authenticate", `Basic realm="ecr"`)
		http.Error(w, `{"errors":[{"code":"DENIED","message":"denied"}]}`, http.StatusUnauthorized)
		return true
	})
	err := s.head(ctx(t), t)
	if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("want a refusal, got %v", err)
	}
	for _, secret := range s.aws.Secrets() {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error holds a secret: %q", err)
		}
	}
	if _, ecr := s.aws.Counts(); ecr != 2 {
		t.Errorf("GetAuthorizationToken ran %d times, want 2", ecr)
	}
	s.stop()
	cloudLeaks(t)
}

func TestCredsexpireShortensAnECRTokensUse(t *testing.T) {
	s := newECR(t, "aws:region=eu-west-1", func(e *registries.Entry) { e.CredsExpire = time.Second })
	// A 12h token would be fetched once; credsexpire 1s has it fetched
	// again (after 0.75s). Counted, not timed: requests go on until the
	// second fetch (the bound only ends a broken run), and the token served
	// several of them before it, so it is not fetched per request.
	heads := 0
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := s.head(ctx(t), t); err != nil {
			t.Fatal(err)
		}
		heads++
		if _, ecr := s.aws.Counts(); ecr >= 2 {
			if ecr != 2 || heads < 3 {
				t.Errorf("GetAuthorizationToken ran %d times in %d requests, want the second run after several requests on the first token", ecr, heads)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s and %d requests the ECR token was never fetched again: credsexpire 1s does not bound the 12h token", heads)
		}
	}
	s.stop()
	cloudLeaks(t)
}

func TestCloudSourcesAreCheckedWhenTheConfigIsRead(t *testing.T) {
	for _, tc := range []struct {
		name, apiURL, creds, wantErr string
	}{
		{"an ECR host gives the region", "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", "aws:", ""},
		{"a FIPS ECR host gives the region", "https://123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", "aws:", ""},
		{"a China ECR host gives the region", "https://123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "aws:", ""},
		{"region= overrides the host", "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", "aws:region=us-east-1", ""},
		{"a mirror needs region=", "https://mirror.example.com", "aws:", "name the region"},
		{"a mirror with region= is fine", "https://mirror.example.com", "aws:region=eu-west-1", ""},
		{"an unknown option is named", "https://mirror.example.com", "aws:regoin=eu-west-1", `unknown option "regoin"`},
		{"an option without a value", "https://mirror.example.com", "aws:region", "key=value"},
		{"an option given twice", "https://mirror.example.com", "aws:region=a,region=b", "given twice"},
		{"gcp: on Artifact Registry", "https://europe-docker.pkg.dev", "gcp:", ""},
		{"gcp: takes no options", "https://gcr.io", "gcp:project=x", "takes no options"},
		{"azure: on ACR", "https://pin.azurecr.io", "azure:", ""},
		{"azure: with tenant and client", "https://pin.azurecr.io", "azure:tenant=t-1,client=c-2", ""},
		{"azure: with an unknown option", "https://pin.azurecr.io", "azure:secret=x", `unknown option "secret"`},
		{"azure on ACR without a colon", "https://pin.azurecr.io", "azure", ""},
		{"azure on Azure China's ACR", "https://pin.azurecr.cn", "azure", ""},
		{"azure on Azure Government's ACR", "https://pin.azurecr.us", "azure", ""},
		{"azure on ACR with a port", "https://pin.azurecr.io:443", "azure", ""},
		{"azure on another host is refused", "https://registry.example.com", "azure", "not a registry of Azure's clouds"},
		{"azure on a host that only ends like ACR is refused", "https://pin.azurecr.io.example.com", "azure", "not a registry of Azure's clouds"},
		{"azure on a look-alike host is refused", "https://evilazurecr.io", "azure", "not a registry of Azure's clouds"},
		{"azure on another host with allowhost=true", "https://registry.example.com", "azure:allowhost=true", ""},
		{"allowhost takes true or false", "https://registry.example.com", "azure:allowhost=yes", "allowhost"},
		{"gcp without a colon", "https://europe-docker.pkg.dev", "gcp", ""},
		{"aws without a colon", "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", "aws", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := mustURL(t, tc.apiURL)
			// As the config decodes it: parsed, then checked against the host.
			src, err := credentials.ParseSource(tc.creds)
			if err == nil {
				e := &registries.Entry{Config: client.Config{Name: "ecr", APIURL: u, Credentials: src}, Prefix: u.Host}
				e.SetDefaults()
				err = e.Validate(nil).ToAggregate()
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				// Written with a bare colon, a kind is named without it.
				if got, want := src.String(), strings.TrimSuffix(tc.creds, ":"); got != want {
					t.Errorf("String = %q, want the source as written %q", got, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
