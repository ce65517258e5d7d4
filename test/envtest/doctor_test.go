package envtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// doctorAnswer is the part of doctor's -o json the test reads.
type doctorAnswer struct {
	Namespace   string   `json:"namespace"`
	Called      bool     `json:"called"`
	PinnedImage string   `json:"pinnedImage"`
	Warnings    []string `json:"warnings"`
	Cause       string   `json:"cause"`
	APIError    string   `json:"apiServerError"`
}

func runDoctor(t *testing.T, args ...string) (int, doctorAnswer, string) {
	t.Helper()
	cmd := exec.Command(os.Getenv("IMAGE_PIN_WEBHOOK_BIN"), append([]string{"doctor", "--kubeconfig", s.kubecfg, "-o", "json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var a doctorAnswer
	if err := json.Unmarshal(stdout.Bytes(), &a); err != nil {
		t.Fatalf("doctor printed no JSON (%v): %s\n%s", err, &stdout, &stderr)
	}
	return code, a, stdout.String() + stderr.String()
}

func TestDoctorSaysWhetherTheAPIServerCallsTheWebhookAndWhyNot(t *testing.T) {
	home := namespace(t, false)
	target := namespace(t, false)
	c, _ := kube(t)
	var tgt corev1.Namespace
	if err := c.Get(ctx(t), client.ObjectKey{Name: target}, &tgt); err != nil {
		t.Fatal(err)
	}
	tgt.Labels = map[string]string{"image-pin-doctor-e2e": home}
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
			FailurePolicy:     ptr(admissionregistrationv1.Fail),
			ClientConfig:      admissionregistrationv1.WebhookClientConfig{URL: &url},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"image-pin-doctor-e2e": home}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
		}}}
	if err := c.Create(ctx(t), mwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx(t), mwc) })
	hook := startSelfManagedOn(t, home, kubeconfig, mwcName, port)
	var ca []byte
	eventually(t, "the CA is injected", func() bool {
		var got admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx(t), client.ObjectKeyFromObject(mwc), &got); err != nil {
			t.Fatal(err)
		}
		ca = got.Webhooks[0].ClientConfig.CABundle
		return len(ca) > 0
	})
	image := s.plain.Host + "/" + uniq("doctor") + ":1"
	digest := push(t, s.plain, image[len(s.plain.Host)+1:])

	code, a, out := runDoctor(t, "--namespace", target, "--webhook-config-name", mwcName, image)
	if code != 0 || !a.Called || a.PinnedImage != image+"@"+digest {
		t.Fatalf("healthy: exit %d, called %v, pinned %q, want 0, true, %q\n%s\n%s", code, a.Called, a.PinnedImage, image+"@"+digest, out, hook.out.String())
	}

	// The configuration pointed where nothing listens.
	other, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	setWebhook := func(mutate func(*admissionregistrationv1.WebhookClientConfig)) {
		t.Helper()
		var live admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx(t), client.ObjectKeyFromObject(mwc), &live); err != nil {
			t.Fatal(err)
		}
		mutate(&live.Webhooks[0].ClientConfig)
		if err := c.Update(ctx(t), &live); err != nil {
			t.Fatal(err)
		}
	}
	setWebhook(func(cc *admissionregistrationv1.WebhookClientConfig) {
		u := fmt.Sprintf("https://localhost:%d/mutate", other)
		cc.URL = &u
	})
	eventually(t, "doctor names the unreachable webhook", func() bool {
		code, a, out = runDoctor(t, "--namespace", target, "--webhook-config-name", mwcName, image)
		return code == 1 && !a.Called && strings.HasPrefix(a.Cause, "unreachable") && strings.Contains(a.APIError, "connection refused")
	})

	// A webhook that answers, with a certificate the caBundle does not
	// verify: the suite's webhook, whose CA is not the one this
	// configuration holds (the rotator keeps writing its own CA back, which
	// is just as wrong for it).
	setWebhook(func(cc *admissionregistrationv1.WebhookClientConfig) {
		u := s.webhook.URL()
		cc.URL = &u
	})
	eventually(t, "doctor names the TLS failure", func() bool {
		code, a, out = runDoctor(t, "--namespace", target, "--webhook-config-name", mwcName, image)
		return code == 1 && !a.Called && strings.HasPrefix(a.Cause, "TLS") && strings.Contains(a.APIError, "x509")
	})

	// No namespace given and none labelled image-pin.io/enabled=true is
	// the only default doctor can take; a missing configuration is named.
	code, a, out = runDoctor(t, "--webhook-config-name", "no-such-configuration")
	if code != 1 || !strings.Contains(a.Cause, "no-such-configuration is missing") {
		t.Errorf("missing configuration: exit %d, cause %q\n%s", code, a.Cause, out)
	}
}
