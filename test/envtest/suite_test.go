package envtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// Credentials used in the run; TestMain checks none of them was printed.
const (
	regUser      = "e2e-user"
	regPass      = "e2e-Pa55w0rd-never-printed"
	wrongPass    = "e2e-wrong-Pa55-never-printed"
	ownNamespace = "image-pin-system"
)

// suite is what every test shares. Each test works in namespaces of its own.
type suite struct {
	restCfg   *rest.Config
	dir       string
	plain     *cluster.Registry // anonymous, plain HTTP
	tlsReg    *cluster.Registry // HTTPS with htpasswd
	tokenReg  *cluster.Registry // bearer tokens from tokens
	flaky     *cluster.Registry // stopped and started by tests
	tokens    *cluster.TokenServer
	authority *cluster.CA
	config    string // the webhook's config file
	extRuns   string // the ext: script appends a line here per run
	webhook   *cluster.Webhook
	kcm       *cluster.ControllerManager
	kubecfg   string        // the admin kubeconfig kubectl and the webhook use
	output    *lockedBuffer // everything the webhook printed
	metrics   string
	logDir    string     // where the webhook's and the controllers' logs go
	mu        sync.Mutex // serialises config rewrites
	// sharedOnce makes the HTTP client and REST mapper every kube client
	// shares (shared).
	sharedOnce sync.Once
	httpClient *http.Client
	mapper     meta.RESTMapper
	sharedErr  error
	// flakyMu is held by each test that stops flaky or answers in its
	// place (holdFlaky), so that they run one at a time while the others
	// run beside them.
	flakyMu sync.Mutex
}

var s *suite

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" || os.Getenv("IMAGE_PIN_WEBHOOK_BIN") == "" {
		fmt.Fprintln(os.Stderr, "end-to-end tests need KUBEBUILDER_ASSETS and IMAGE_PIN_WEBHOOK_BIN: run `make e2e`")
		os.Exit(1)
	}
	ctrllog.SetLogger(logr.Discard()) // envtest and helm log through controller-runtime
	crds, err := cluster.CertManagerCRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	logDir := os.TempDir() // before TMPDIR moves: developers look for the logs there
	restoreTmp := tmpInMemory()
	env := &envtest.Environment{CRDDirectoryPaths: []string{crds}, ErrorIfCRDPathMissing: true}
	code, err := run(m, env, logDir)
	_ = env.Stop()
	restoreTmp()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M, env *envtest.Environment, logDir string) (int, error) {
	dir, err := os.MkdirTemp("", "image-pin-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	s = &suite{dir: dir, output: &lockedBuffer{}, logDir: logDir}
	if s.restCfg, err = env.Start(); err != nil {
		return 0, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	if err := s.startRegistries(); err != nil {
		return 0, err
	}
	defer s.stopRegistries()
	if err := s.seedSecrets(); err != nil {
		return 0, err
	}
	if err := s.startWebhook(); err != nil {
		return 0, err
	}
	defer s.stopWebhook()
	// After the webhook, so that everything the controllers create is admitted through it.
	if err := s.startControllers(env); err != nil {
		return 0, err
	}
	defer s.kcm.Stop(20 * time.Second)
	code := m.Run()
	if leaked := s.leakedCredentials(); leaked != "" {
		fmt.Fprintf(os.Stderr, "FAIL: the webhook printed a credential (%s)\n", leaked)
		code = 1
	}
	return code, nil
}

func (s *suite) startRegistries() error {
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "registry")
	var err error
	if s.authority, err = cluster.NewCA(); err != nil {
		return err
	}
	if s.tokens, err = cluster.StartTokenServer(regUser, regPass); err != nil {
		return err
	}
	if s.plain, err = cluster.StartRegistry(bin, filepath.Join(s.dir, "plain"), cluster.RegistryOptions{}); err != nil {
		return err
	}
	if s.tlsReg, err = cluster.StartRegistry(bin, filepath.Join(s.dir, "tls"), cluster.RegistryOptions{Kind: cluster.TLSHtpasswd, Authority: s.authority, User: regUser, Pass: regPass}); err != nil {
		return err
	}
	if s.tokenReg, err = cluster.StartRegistry(bin, filepath.Join(s.dir, "token"), cluster.RegistryOptions{Kind: cluster.Token, Tokens: s.tokens, User: regUser, Pass: regPass}); err != nil {
		return err
	}
	s.flaky, err = cluster.StartRegistry(bin, filepath.Join(s.dir, "flaky"), cluster.RegistryOptions{})
	return err
}

func (s *suite) stopRegistries() {
	for _, r := range []*cluster.Registry{s.plain, s.tlsReg, s.tokenReg, s.flaky} {
		if r != nil {
			r.Stop()
		}
	}
	if s.tokens != nil {
		_ = s.tokens.Close()
	}
}

func (s *suite) client() (client.Client, error) { return client.New(s.restCfg, client.Options{}) }

// shared is the HTTP client and REST mapper of the admin config, made once.
func (s *suite) shared() (*http.Client, meta.RESTMapper, error) {
	s.sharedOnce.Do(func() {
		if s.httpClient, s.sharedErr = rest.HTTPClientFor(s.restCfg); s.sharedErr == nil {
			s.mapper, s.sharedErr = apiutil.NewDynamicRESTMapper(s.restCfg, s.httpClient)
		}
	})
	return s.httpClient, s.mapper, s.sharedErr
}

// seedSecrets creates the Secrets that secret: and pullsecret: read.
func (s *suite) seedSecrets() error {
	c, err := s.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	auth := base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPass))
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "creds"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownNamespace, Labels: map[string]string{"image-pin.io/enabled": "true"}}},
		// The seed's GHCR secret: the key holds user:token.
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "creds", Name: "ghcr-secret"}, StringData: map[string]string{"token": regUser + ":" + regPass}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "creds", Name: "pull"}, Type: corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: fmt.Sprintf(`{"auths":{"https://%s":{"auth":"%s"}}}`, s.tlsReg.Host, auth)}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

const configTemplate = `registries:
- name: plain
  api_url: http://{{.Plain}}
  prefix: {{.Plain}}
- name: ghcr-style secret
  api_url: https://{{.TLS}}/
  prefix: {{.TLS}}/secret
  ca_file: {{.CA}}
  credentials: secret:creds/ghcr-secret#token
- name: pull secret
  api_url: https://{{.TLS}}
  prefix: {{.TLS}}/pullsecret
  ca_data: |
{{.CAData}}
  credentials: pullsecret:creds/pull
- name: env
  api_url: http://{{.Token}}
  prefix: {{.Token}}/env
  credentials: env:E2E_REGISTRY_CREDS
  ping: yes
- name: ecr-style script
  api_url: http://{{.Token}}
  prefix: {{.Token}}/ext
  credentials: ext:{{.Script}}
  credsexpire: 4s
- name: wrong ignore
  api_url: http://{{.Token}}
  prefix: {{.Token}}/wrong-ignore
  credentials: env:E2E_WRONG_CREDS
  on_error: ignore
- name: wrong fail
  api_url: http://{{.Token}}
  prefix: {{.Token}}/wrong-fail
  credentials: env:E2E_WRONG_CREDS
  on_error: fail
- name: flaky ignore
  api_url: http://{{.Flaky}}
  prefix: {{.Flaky}}/ignore
  on_error: ignore
- name: flaky fail
  api_url: http://{{.Flaky}}
  prefix: {{.Flaky}}/fail
  on_error: fail
- name: tenant a
  api_url: http://{{.Token}}
  prefix: {{.Token}}/tenant
  credentials: env:E2E_REGISTRY_CREDS
  namespaces: ["tenant-a-*"]
  on_error: fail
- name: tenant b
  api_url: http://{{.Token}}
  prefix: {{.Token}}/tenant-b
  credentials: env:E2E_REGISTRY_CREDS
  namespaces: ["tenant-b-*"]
  on_error: fail
- name: workload pull secrets
  api_url: http://{{.Token}}
  prefix: {{.Token}}/pullsecrets
  credentials: imagepullsecrets
  on_error: fail
- name: anonymous catch-all
  api_url: http://{{.Token}}
  prefix: {{.Token}}
  on_error: fail
policy:
  cache_ttl: 1s
  resolve_timeout: 8s
{{- if .Extra}}
  images:
  - prefix: {{.Plain}}/reload
    constraint: "~1"
{{- end}}
`

// writeConfig writes the webhook's config; extra adds the rule the reload
// test looks for. It writes a new file and renames it over the old one, as
// editors and the kubelet do.
func (s *suite) writeConfig(extra bool) error {
	var caData strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(s.authority.CertPEM)), "\n") {
		caData.WriteString("    " + line + "\n")
	}
	var b bytes.Buffer
	err := template.Must(template.New("config").Parse(configTemplate)).Execute(&b, map[string]any{
		"Plain": s.plain.Host, "TLS": s.tlsReg.Host, "Token": s.tokenReg.Host, "Flaky": s.flaky.Host,
		"CA": filepath.Join(s.dir, "ca.pem"), "CAData": strings.TrimRight(caData.String(), "\n"),
		"Script": filepath.Join(s.dir, "login.sh"), "Extra": extra,
	})
	if err != nil {
		return err
	}
	tmp := s.config + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.config)
}

func (s *suite) startWebhook() error {
	if err := os.WriteFile(filepath.Join(s.dir, "ca.pem"), s.authority.CertPEM, 0o644); err != nil {
		return err
	}
	s.extRuns = filepath.Join(s.dir, "ext-runs")
	// An ECR-style login script: prints user:password, here without the AWS CLI.
	script := fmt.Sprintf("#!/bin/sh\necho run >> %s\necho \"$E2E_EXT_USER:$E2E_EXT_PASS\"\n", s.extRuns)
	if err := os.WriteFile(filepath.Join(s.dir, "login.sh"), []byte(script), 0o755); err != nil {
		return err
	}
	s.config = filepath.Join(s.dir, "config", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(s.config), 0o755); err != nil {
		return err
	}
	if err := s.writeConfig(false); err != nil {
		return err
	}
	certDir := filepath.Join(s.dir, "serving")
	if err := s.authority.Issue(certDir); err != nil {
		return err
	}
	kubeconfig := filepath.Join(s.dir, "kubeconfig")
	if err := cluster.WriteKubeconfig(s.restCfg, kubeconfig); err != nil {
		return err
	}
	s.kubecfg = kubeconfig
	logFile, err := os.Create(filepath.Join(s.logDir, "image-pin-e2e-webhook.log"))
	if err != nil {
		return err
	}
	s.webhook, err = cluster.StartWebhook(cluster.WebhookOptions{
		Binary: os.Getenv("IMAGE_PIN_WEBHOOK_BIN"), Config: s.config, CertDir: certDir, Kubeconfig: kubeconfig, Metrics: true,
		Args: []string{"--zap-log-level", "debug", "--shutdown-delay", "1s"},
		Env: []string{"POD_NAMESPACE=" + ownNamespace,
			"E2E_REGISTRY_CREDS=" + regUser + ":" + regPass, "E2E_WRONG_CREDS=" + regUser + ":" + wrongPass,
			"E2E_EXT_USER=" + regUser, "E2E_EXT_PASS=" + regPass},
		Output: io.MultiWriter(s.output, logFile),
	})
	if err != nil {
		return fmt.Errorf("%w; it printed:\n%s", err, s.output.String())
	}
	s.metrics = fmt.Sprintf("127.0.0.1:%d", s.webhook.Metrics)
	c, err := s.client()
	if err != nil {
		return err
	}
	rendered, err := cluster.Render("image-pin-webhook", ownNamespace, nil)
	if err != nil {
		return err
	}
	mwc, err := cluster.LoopbackWebhook(rendered, s.webhook.URL(), s.authority.CertPEM)
	if err != nil {
		return err
	}
	if err := c.Create(context.Background(), mwc); err != nil {
		return err
	}
	return s.waitForWebhook(c)
}

// startControllers runs kube-controller-manager beside envtest's API server,
// with the service account signing key envtest generated for it.
func (s *suite) startControllers(env *envtest.Environment) error {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	logFile, err := os.Create(filepath.Join(s.logDir, "image-pin-e2e-kube-controller-manager.log"))
	if err != nil {
		return err
	}
	certDir := env.ControlPlane.APIServer.CertDir
	caFile := filepath.Join(s.dir, "apiserver-ca.pem")
	if err := os.WriteFile(caFile, s.restCfg.CAData, 0o644); err != nil {
		return err
	}
	s.kcm, err = cluster.StartControllerManager(cluster.ControllerManagerOptions{
		Binary: filepath.Join(assets, "kube-controller-manager"), Kubeconfig: s.kubecfg,
		ServiceAccountKey: filepath.Join(certDir, "sa-signer.key"), RootCA: caFile, Output: logFile,
	})
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logFile.Name())
	}
	return nil
}

// waitForWebhook creates a probe Pod until the API server calls the webhook
// (it reads new configurations with a short delay).
func (s *suite) waitForWebhook(c client.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: map[string]string{"image-pin.io/enabled": "true"}}}
	if err := c.Create(context.Background(), ns); err != nil {
		return err
	}
	if _, err := s.plain.Push("probe:1"); err != nil {
		return err
	}
	for i := 0; i < 100; i++ {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "probe", GenerateName: "probe-"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: s.plain.Host + "/probe:1"}}}}
		if err := c.Create(context.Background(), pod); err != nil {
			return err
		}
		if strings.Contains(pod.Spec.Containers[0].Image, "@sha256:") {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the API server never called the webhook")
}

func (s *suite) stopWebhook() {
	if s.webhook != nil {
		s.webhook.Stop(20 * time.Second)
	}
}

// leakedCredentials names any credential of the run that the webhook printed.
func (s *suite) leakedCredentials() string {
	out := s.output.String()
	for _, secret := range []string{regPass, wrongPass, base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPass)), pullPassA, pullPassB} {
		if strings.Contains(out, secret) {
			return fmt.Sprintf("%d bytes of output hold a %d-character secret", len(out), len(secret))
		}
	}
	return ""
}
