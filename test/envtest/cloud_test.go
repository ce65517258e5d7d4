package envtest

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/test/cloudtest"
	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// ecrHost is how the pods name the registry: an ECR host, reached through
// api_url at a real distribution registry on this machine.
const ecrHost = "000000000000.dkr.ecr.eu-west-1.amazonaws.com"

// ecr is an ECR-shaped registry: local STS and ECR endpoints, and in front
// of a real distribution registry (whose htpasswd holds only the password
// the ECR endpoint hands out) a guard that refuses any token ECR did not
// issue or that has run out, as ECR does.
type ecr struct {
	aws    *cloudtest.AWS
	proxy  *httptest.Server
	digest string
	// refusedWithToken counts requests that carried a credential and were
	// still refused: a token used after it ran out.
	refusedWithToken atomic.Int64

	// The ECR endpoint answers after tokenDelay; answered counts the
	// admissions answered, and answeredDuring, for each token request, how
	// many were answered while it was being served.
	ecrEndpoint    *httptest.Server
	tokenDelay     time.Duration
	answered       atomic.Int64
	mu             sync.Mutex
	answeredDuring []int64
}

func startECR(t *testing.T) *ecr {
	t.Helper()
	const pass = "e2e-ECR-issued-Pa55-never-printed"
	reg, err := cluster.StartRegistry(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "registry"), t.TempDir(), cluster.RegistryOptions{Kind: cluster.TLSHtpasswd, Authority: s.authority, User: "AWS", Pass: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	e := &ecr{aws: cloudtest.NewAWS(t)}
	e.aws.SetPassword(pass)
	if e.digest, err = reg.Push("team/app:1"); err != nil {
		t.Fatal(err)
	}

	awsURL, _ := url.Parse(e.aws.URL)
	toAWS := httputil.NewSingleHostReverseProxy(awsURL)
	e.ecrEndpoint = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before := e.answered.Load()
		time.Sleep(e.tokenDelay)
		toAWS.ServeHTTP(w, r)
		e.mu.Lock()
		e.answeredDuring = append(e.answeredDuring, e.answered.Load()-before)
		e.mu.Unlock()
	}))
	t.Cleanup(e.ecrEndpoint.Close)

	target, _ := url.Parse(reg.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.authority.Pool()}}
	e.proxy = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _, withToken := r.BasicAuth()
		if e.aws.Guard(w, r) {
			if withToken {
				e.refusedWithToken.Add(1)
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	certs := filepath.Join(t.TempDir(), "proxy")
	if err := s.authority.Issue(certs); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certs, "tls.crt"), filepath.Join(certs, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	e.proxy.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	e.proxy.StartTLS()
	t.Cleanup(e.proxy.Close)
	return e
}

// start runs the built webhook as EKS runs it with IRSA: a web-identity
// token file and a role, the SDK pointed at the local endpoints, and no
// login script, AWS CLI or static key anywhere.
func (e *ecr) start(t *testing.T) *process {
	t.Helper()
	var env []string
	for k, v := range e.aws.Env(t, t.TempDir()) {
		env = append(env, k+"="+v)
	}
	env = append(env, "AWS_ENDPOINT_URL_ECR="+e.ecrEndpoint.URL)
	doc := fmt.Sprintf(`registries:
- name: ECR
  api_url: %s
  prefix: %s
  credentials: aws:region=eu-west-1
  limit: 100000
  ca_data: |
%s
policy:
  cache_ttl: 0s
`, e.proxy.URL, ecrHost, indent(string(s.authority.CertPEM), "    "))
	return startMetered(t, doc, env...)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// admitFor posts admissions of the ECR image from workers goroutines until
// n have been answered or until stop, and returns how many were and the
// first answer that was not a clean pin.
// admitFor's reviews name team-a: its caller opts it in (optInNamed).
func (e *ecr) admitFor(p *process, workers, n int, stop time.Time) (int64, string) {
	want := ecrHost + "/team/app:1@" + e.digest
	body := review("team-a", "Pod", "CREATE", ecrHost+"/team/app:1")
	var done atomic.Int64
	var mu sync.Mutex
	bad := ""
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if i := done.Add(1); (n > 0 && i > int64(n)) || (n == 0 && time.Now().After(stop)) {
					done.Add(-1)
					return
				}
				r, raw, err := p.send(body)
				e.answered.Add(1)
				if err != nil {
					raw = err.Error()
				}
				if err != nil || !r.Allowed || len(r.Warnings) > 0 || !strings.Contains(string(r.Patch), want) {
					mu.Lock()
					if bad == "" {
						bad = raw
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return done.Load(), bad
}

func TestAThousandAdmissionsThroughAnECRRegistryWithIRSAShareOneToken(t *testing.T) {
	t.Parallel()
	optInNamed(t, "team-a")
	e := startECR(t)
	p := e.start(t)
	n, bad := e.admitFor(p, 8, 1000, time.Time{})
	if bad != "" {
		t.Fatalf("an admission was not pinned cleanly: %s", bad)
	}
	if sts, ecr := e.aws.Counts(); sts != 1 || ecr != 1 {
		t.Errorf("token requests for %d admissions: sts=%d ecr=%d, want 1 and 1", n, sts, ecr)
	}
	e.noSecretIn(t, p)
}

func TestAnECRTokenIsRefreshedBeforeItRunsOutWhileAdmissionsGoOn(t *testing.T) {
	t.Parallel()
	optInNamed(t, "team-a")
	e := startECR(t)
	e.tokenDelay = 1500 * time.Millisecond
	// ECR tokens live 12h; here 6s, so that several run out during the
	// test. The webhook stops using one at 90% of its life (5.4s) and
	// starts refreshing it in the background at 75% of that (about 4s).
	const life, run = 6 * time.Second, 20 * time.Second
	e.aws.SetLifetimes(time.Hour, life)
	p := e.start(t)
	n, bad := e.admitFor(p, 4, 0, time.Now().Add(run))
	if bad != "" {
		t.Fatalf("an admission was not pinned cleanly while tokens ran out: %s", bad)
	}
	_, tokens := e.aws.Counts()
	// One token per window of about 5.5s (4s of use, 1.5s of login): 4 in
	// 20s. Fewer means a token was used past its life (which the guard
	// also counts); more than 10 means admissions, not the expiry, drive
	// token requests.
	if tokens < 3 || tokens > 10 {
		t.Errorf("ECR token requests in %s with tokens living %s, over %d admissions: %d, want one per expiry window (3..10)", run, life, n, tokens)
	}
	// A refresh that made admissions wait would see none answered while
	// the (slow) token endpoint works on it; the first login is waited for.
	e.mu.Lock()
	during := append([]int64(nil), e.answeredDuring...)
	e.mu.Unlock()
	for i, n := range during[1:] {
		if n < 20 {
			t.Errorf("token request %d: only %d admissions answered during its %s: admissions waited for the refresh (all: %v)", i+2, n, e.tokenDelay, during)
		}
	}
	if refused := e.refusedWithToken.Load(); refused != 0 {
		t.Errorf("the registry refused %d requests for an expired token: a token was used past its life", refused)
	}
	t.Logf("%d admissions in %s, %d ECR token requests, admissions answered during each: %v", n, run, tokens, during)
	e.noSecretIn(t, p)
}

// noSecretIn checks the webhook's log and /metrics for every secret the
// local endpoints handed out or were handed.
func (e *ecr) noSecretIn(t *testing.T, p *process) {
	t.Helper()
	out := p.out.String() + p.scrape(t)
	for _, secret := range append(e.aws.Secrets(), "e2e-ECR-issued-Pa55-never-printed") {
		if strings.Contains(out, secret) {
			t.Errorf("the webhook's log or metrics hold a secret")
		}
	}
}
