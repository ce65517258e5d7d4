package envtest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// process is a webhook process of a test's own, apart from the shared one.
type process struct {
	*cluster.Webhook
	certDir string
	client  *http.Client
	out     *lockedBuffer
}

// startOwn starts a webhook with a one-entry config for apiURL (prefix
// bench.local) and kubeconfig.
func startOwn(t *testing.T, apiURL, kubeconfig string, extraArgs ...string) *process {
	t.Helper()
	return startWithConfig(t, fmt.Sprintf("registries:\n- name: own\n  api_url: %s\n  prefix: bench.local\n", apiURL), kubeconfig, extraArgs...)
}

// startWithConfig starts a webhook with the config document doc.
func startWithConfig(t *testing.T, doc, kubeconfig string, extraArgs ...string) *process {
	t.Helper()
	return startProcess(t, doc, cluster.WebhookOptions{Kubeconfig: kubeconfig, Args: extraArgs})
}

// startProcess starts a webhook of the test's own with the config document
// doc, serving certificates from the suite's CA; o gives the rest (the
// binary, config, certificates and output are filled in here).
func startProcess(t *testing.T, doc string, o cluster.WebhookOptions) *process {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &process{out: &lockedBuffer{}, certDir: filepath.Join(dir, "certs")}
	if err := s.authority.Issue(p.certDir); err != nil {
		t.Fatal(err)
	}
	o.Binary, o.Config, o.CertDir, o.Output = os.Getenv("IMAGE_PIN_WEBHOOK_BIN"), cfg, p.certDir, p.out
	w, err := cluster.StartWebhook(o)
	if err != nil {
		t.Fatalf("%v; it printed:\n%s", err, p.out.String())
	}
	p.Webhook = w
	t.Cleanup(func() {
		w.Kill()
		_, _ = w.Cmd.Process.Wait()
	})
	p.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.authority.Pool()}}}
	return p
}

func admissionBody(image string) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"version":"v1","kind":"Pod"},"resource":{"version":"v1","resource":"pods"},"operation":"CREATE","namespace":"team-a","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"%s"}]}}}}`, image))
}

func (p *process) admit(t *testing.T, image string) string {
	t.Helper()
	resp, err := p.client.Post(p.URL(), "application/json", bytes.NewReader(admissionBody(image)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestAReplicaThatCannotReachTheAPIServerStillPins(t *testing.T) {
	t.Parallel()
	repo := uniq("noapi")
	digest := push(t, s.plain, repo+":1")
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(cluster.UnreachableKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startOwn(t, "http://"+s.plain.Host, kc)
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal([]byte(p.admit(t, "bench.local/"+repo+":1")), &rev); err != nil || rev.Response == nil {
		t.Fatalf("not an AdmissionReview: %v", err)
	}
	if want := "bench.local/" + repo + ":1@" + digest; !strings.Contains(string(rev.Response.Patch), want) {
		t.Fatalf("patch %s does not pin to %s", rev.Response.Patch, want)
	}
}

func TestTheAdmissionPortServesTLSOnly(t *testing.T) {
	t.Parallel()
	optInNamed(t, "team-a")
	p := startOwn(t, "http://"+s.plain.Host, filepath.Join(s.dir, "kubeconfig"))
	addr := fmt.Sprintf("127.0.0.1:%d", p.Port)
	t.Run("plain HTTP is refused", func(t *testing.T) {
		resp, err := http.Post("http://"+addr+"/mutate", "application/json", bytes.NewReader(admissionBody("x")))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), "AdmissionReview") {
				t.Fatal("an admission was answered over plain HTTP")
			}
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: s.authority.Pool(), MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})
	t.Run("TLS 1.2 is served", func(t *testing.T) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: s.authority.Pool(), MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	})
}

func TestOnSIGTERMReadinessGoesFirstAndInFlightAdmissionsComplete(t *testing.T) {
	t.Parallel()
	optInNamed(t, "team-a")
	repo := uniq("drain")
	push(t, s.plain, repo+":1")
	// A registry that takes 2s per manifest: an admission is in flight
	// when SIGTERM comes, which is sent once its lookup has arrived.
	target, _ := url.Parse("http://" + s.plain.Host)
	rp := httputil.NewSingleHostReverseProxy(target)
	arrived := make(chan struct{})
	var first sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			first.Do(func() { close(arrived) })
			time.Sleep(2 * time.Second)
		}
		rp.ServeHTTP(w, r)
	}))
	defer slow.Close()
	p := startOwn(t, slow.URL, filepath.Join(s.dir, "kubeconfig"), "--shutdown-delay", "1s")
	result := make(chan string, 1)
	go func() {
		resp, err := p.client.Post(p.URL(), "application/json", bytes.NewReader(admissionBody("bench.local/"+repo+":1")))
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	select {
	case <-arrived:
	case out := <-result:
		t.Fatalf("the admission was answered before its lookup reached the registry: %s", out)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	notReady := false
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code := p.Ready(); code != http.StatusOK {
			notReady = true
			break
		}
	}
	if !notReady {
		t.Error("readiness did not go false after SIGTERM")
	}
	select {
	case out := <-result:
		if !strings.Contains(out, `"patch"`) {
			t.Fatalf("the in-flight admission did not complete: %s", out)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the in-flight admission never completed")
	}
	done := make(chan error, 1)
	go func() { done <- p.Cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, p.out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the webhook did not exit")
	}
}

// The seed's registries (ECR through a login script, GHCR through a Secret)
// are unreachable from here: the webhook must start and become ready anyway.
const seedConfig = `registries:
  - name: ECR
    api_url: https://000000000000.dkr.ecr.eu-west-1.amazonaws.com
    prefix: 000000000000.dkr.ecr.eu-west-1.amazonaws.com
    ping: yes
    insecure: false
    credentials: ext:/scripts/login.sh
    credsexpire: 10h
  - name: GitHub Container Registry
    api_url: https://ghcr.io

    prefix: ghcr.io

    ping: yes

    credentials: secret:argocd/ghcr-secret#token
`

func TestTheSeedsConfigStartsWithItsRegistriesUnreachable(t *testing.T) {
	t.Parallel()
	p := startWithConfig(t, seedConfig, filepath.Join(s.dir, "kubeconfig"))
	if code := p.Ready(); code != http.StatusOK {
		t.Fatalf("readyz %d", code)
	}
}

func TestAnInvalidConfigAtStartExitsNamingTheField(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("registries:\n- name: ECR\n  api_url: https://x.example\n  prefix: x.example\n  credsexpire: 10 hours\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port, _ := cluster.FreePort()
	cmd := exec.Command(os.Getenv("IMAGE_PIN_WEBHOOK_BIN"), "--config", cfg, "--kubeconfig", filepath.Join(s.dir, "kubeconfig"),
		"--port", fmt.Sprint(port), "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("started with an invalid config")
	}
	for _, want := range []string{cfg, `registries[0] "ECR"`, "credsexpire"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}

func TestABadFlagValueExitsWithStatusTwoNamingTheFlagBeforeListening(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Getenv("IMAGE_PIN_WEBHOOK_BIN"), "--config", filepath.Join(t.TempDir(), "absent.yaml"),
		"--kubeconfig", filepath.Join(s.dir, "kubeconfig"), "--port", "0", "--shutdown-delay", "-1s")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("err = %v, want exit status 2:\n%s", err, out)
	}
	for _, want := range []string{"--port: 0", "--shutdown-delay: -1s"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}
