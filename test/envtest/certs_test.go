package envtest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// selfManagedRBAC is all --cert-secret needs, as docs/operations.md lists
// it: the test runs the webhook with a ServiceAccount token bound to
// nothing more.
func selfManagedRBAC(ns, sa, mwc string) []client.Object {
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}}
	return []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + sa}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, Verbs: []string{"list", "watch"}},
			// The namespace gate (charts/image-pin-webhook/templates/namespaces-rbac.yaml).
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, ResourceNames: []string{mwc}, Verbs: []string{"get", "update"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + sa}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ns + "-" + sa}},
	}
}

// serviceAccountKubeconfig writes a kubeconfig holding a token of the
// ServiceAccount ns/name.
func serviceAccountKubeconfig(t *testing.T, ns, name string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(s.restCfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx(t), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cluster.WriteKubeconfig(&rest.Config{Host: s.restCfg.Host, TLSClientConfig: rest.TLSClientConfig{CAData: s.restCfg.CAData}, BearerToken: tok.Status.Token}, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// selfManaged is a webhook process started with --cert-secret and an
// empty certificate directory.
type selfManaged struct {
	*cluster.Webhook
	port    int
	certDir string
	out     *lockedBuffer
}

func startSelfManaged(t *testing.T, ns, kubeconfig, mwc string) *selfManaged {
	t.Helper()
	port, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return startSelfManagedOn(t, ns, kubeconfig, mwc, port)
}

func startSelfManagedOn(t *testing.T, ns, kubeconfig, mwc string, port int) *selfManaged {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("registries:\n- name: plain\n  api_url: http://%s\n  prefix: %s\n", s.plain.Host, s.plain.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &selfManaged{port: port, certDir: filepath.Join(dir, "certs"), out: &lockedBuffer{}}
	w, err := cluster.StartWebhook(cluster.WebhookOptions{
		Binary: os.Getenv("IMAGE_PIN_WEBHOOK_BIN"), Config: cfg, CertDir: p.certDir, Kubeconfig: kubeconfig, Output: p.out,
		// localhost: the certificate carries DNS names only, and the API
		// server reaches the loopback webhook by that one.
		// The namespace gate proves the label the test's own webhook configuration selects.
		Args: []string{"--port", fmt.Sprint(port), "--cert-secret", "image-pin-webhook-tls", "--webhook-config-name", mwc, "--cert-dns-name", "localhost",
			"--namespace-label", "image-pin-certs-e2e=" + ns},
		Env: []string{"POD_NAMESPACE=" + ns},
	})
	if err != nil {
		t.Fatalf("%v; it printed:\n%s", err, p.out.String())
	}
	p.Webhook = w
	t.Cleanup(func() {
		w.Kill()
		_, _ = w.Cmd.Process.Wait()
	})
	return p
}

func (p *selfManaged) url() string { return fmt.Sprintf("https://localhost:%d/mutate", p.port) }

// chainsTo reports whether the PEM certificate crt verifies against the PEM CA ca for localhost.
func chainsTo(crt, ca []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no CA in %q", ca)
	}
	b, _ := pem.Decode(crt)
	if b == nil {
		return fmt.Errorf("no certificate in %q", crt)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return err
	}
	_, err = c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"})
	return err
}

// eventually polls cond until it holds; the bound only ends a broken run.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

func TestWithCertSecretTheWebhookMakesItsCertificateInjectsTheCAAndReplicasShareIt(t *testing.T) {
	t.Parallel()
	home := namespace(t, false) // the webhook's namespace: the Secret lives here
	target := namespace(t, false)
	c, _ := kube(t)
	// A webhook configuration of the test's own, selecting target only, as
	// the chart renders it with certificates.generator=webhook: no caBundle.
	var tgt corev1.Namespace
	if err := c.Get(ctx(t), client.ObjectKey{Name: target}, &tgt); err != nil {
		t.Fatal(err)
	}
	tgt.Labels = map[string]string{"image-pin-certs-e2e": home}
	if err := c.Update(ctx(t), &tgt); err != nil {
		t.Fatal(err)
	}
	mwcName := "image-pin-webhook-" + home
	for _, o := range selfManagedRBAC(home, "image-pin-webhook", mwcName) {
		if err := c.Create(ctx(t), o); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := serviceAccountKubeconfig(t, home, "image-pin-webhook")

	port, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://localhost:%d/mutate", port)
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: mwcName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "pin.image-pin.io", AdmissionReviewVersions: []string{"v1"},
			SideEffects:       ptr(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:     ptr(admissionregistrationv1.Fail), // a failed call shows as an error
			ClientConfig:      admissionregistrationv1.WebhookClientConfig{URL: &url},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"image-pin-certs-e2e": home}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
		}}}
	if err := c.Create(ctx(t), mwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx(t), mwc) })

	// The first replica starts with no Secret and no files; it is ready
	// (StartWebhook waits for /readyz) once both are there.
	first := startSelfManagedOn(t, home, kubeconfig, mwcName, port)
	var secret corev1.Secret
	if err := c.Get(ctx(t), client.ObjectKey{Namespace: home, Name: "image-pin-webhook-tls"}, &secret); err != nil {
		t.Fatalf("the webhook made no Secret: %v\n%s", err, first.out.String())
	}
	ca := secret.Data["ca.crt"]
	if err := chainsTo(secret.Data["tls.crt"], ca); err != nil {
		t.Fatalf("the Secret's certificate does not chain to its CA for localhost: %v", err)
	}
	onDisk, err := os.ReadFile(filepath.Join(first.certDir, "tls.crt"))
	if err != nil || !bytes.Equal(onDisk, secret.Data["tls.crt"]) {
		t.Fatalf("--cert-dir holds %d bytes (%v), not the Secret's certificate", len(onDisk), err)
	}
	caBundle := func() []byte {
		var got admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx(t), client.ObjectKeyFromObject(mwc), &got); err != nil {
			t.Fatal(err)
		}
		return got.Webhooks[0].ClientConfig.CABundle
	}
	eventually(t, "the CA is in the webhook configuration's caBundle", func() bool { return bytes.Equal(caBundle(), ca) })

	image := s.plain.Host + "/" + uniq("certs") + ":1"
	digest := push(t, s.plain, image[len(s.plain.Host)+1:])
	admitted := func(name string) string {
		t.Helper()
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: target, Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
		if err := c.Create(ctx(t), pod); err != nil {
			t.Fatalf("the API server could not call the webhook: %v", err)
		}
		return pod.Spec.Containers[0].Image
	}
	if got, want := admitted("first"), image+"@"+digest; got != want {
		t.Errorf("through the self-managed certificate the Pod got %q, want %q", got, want)
	}

	// A sync that writes the configuration back without a caBundle (helm,
	// Argo CD) gets it back.
	var live admissionregistrationv1.MutatingWebhookConfiguration
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(mwc), &live); err != nil {
		t.Fatal(err)
	}
	live.Webhooks[0].ClientConfig.CABundle = nil
	if err := c.Update(ctx(t), &live); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the caBundle is injected again after a sync emptied it", func() bool { return bytes.Equal(caBundle(), ca) })

	// A second replica on the same Secret keeps its CA, and serves with a
	// certificate the caBundle verifies: the API server's calls reach it
	// once the first is gone.
	second := startSelfManaged(t, home, kubeconfig, mwcName)
	onDisk2, err := os.ReadFile(filepath.Join(second.certDir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := chainsTo(onDisk2, ca); err != nil {
		t.Errorf("the second replica's certificate does not chain to the first one's CA: %v", err)
	}
	if err := c.Get(ctx(t), client.ObjectKey{Namespace: home, Name: "image-pin-webhook-tls"}, &secret); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret.Data["ca.crt"], ca) {
		t.Error("the second replica replaced the CA")
	}
	first.Kill()
	_, _ = first.Cmd.Process.Wait()
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(mwc), &live); err != nil {
		t.Fatal(err)
	}
	u := second.url()
	live.Webhooks[0].ClientConfig.URL = &u
	if err := c.Update(ctx(t), &live); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second replica answers the API server", func() bool {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: target, GenerateName: "second-"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
		return c.Create(ctx(t), pod) == nil && pod.Spec.Containers[0].Image == image+"@"+digest
	})
	for _, out := range []string{first.out.String(), second.out.String()} {
		if bytes.Contains([]byte(out), secret.Data["ca.key"]) || bytes.Contains([]byte(out), secret.Data["tls.key"]) {
			t.Error("a replica printed a private key")
		}
	}
}
