package envtest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

type doctorAnswer struct {
	Called    bool
	Namespace string
	Pinned    string
	LeftAlone bool
	Cause     string
	Detail    string
}

func doctor(t *testing.T, args ...string) (int, doctorAnswer, string) {
	t.Helper()
	code, out, errOut := cli(t, nil, append([]string{"doctor", "--kubeconfig", s.kubecfg, "-o", "json"}, args...)...)
	var a doctorAnswer
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("doctor: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	return code, a, out
}

func TestDoctorSeesAHealthyWebhookAnUnreachableOneAndAWrongCABundle(t *testing.T) {
	t.Parallel()
	// Healthy: the suite's webhook, as the chart registers it.
	image := s.plain.Host + "/" + uniq("doctor") + ":1"
	digest := push(t, s.plain, image[len(s.plain.Host)+1:])
	code, a, out := doctor(t, "--webhook-config-name", "image-pin-webhook", image)
	if code != 0 || !a.Called || a.Pinned != image+"@"+digest || a.Namespace == ownNamespace {
		t.Errorf("healthy: exit %d\n%s", code, out)
	}
	code, a, out = doctor(t, "--webhook-config-name", "image-pin-webhook")
	if code != 0 || !a.Called || !a.LeftAlone {
		t.Errorf("healthy, default image: exit %d\n%s", code, out)
	}

	// Broken: configurations of the test's own, selecting one namespace.
	ns := namespace(t, false)
	c, _ := kube(t)
	port, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	other, err := cluster.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url string
		ca        []byte
		cause     string
	}{
		{"a webhook whose process is gone is unreachable", fmt.Sprintf("https://127.0.0.1:%d/mutate", port), s.authority.CertPEM, "unreachable"},
		{"a caBundle of another CA is a TLS error", s.webhook.URL(), other.CertPEM, "tls"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("doctor-%s-%d", ns, i)},
				Webhooks: []admissionregistrationv1.MutatingWebhook{{
					Name: "pin.image-pin.io", AdmissionReviewVersions: []string{"v1"},
					SideEffects:       ptr(admissionregistrationv1.SideEffectClassNone),
					FailurePolicy:     ptr(admissionregistrationv1.Ignore), // the chart's: failures are silent
					TimeoutSeconds:    ptr(int32(10)),
					ClientConfig:      admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: tc.ca},
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
					Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
				}}}
			if err := c.Create(ctx(t), mwc); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Delete(context.Background(), mwc) })
			var code int
			var a doctorAnswer
			var out string
			// The API server reads new configurations with a short delay.
			eventually(t, "doctor finds the cause "+tc.cause, func() bool {
				code, a, out = doctor(t, "--webhook-config-name", mwc.Name)
				return a.Cause == tc.cause
			})
			if code != 1 || a.Called || a.Namespace != ns {
				t.Errorf("exit %d\n%s", code, out)
			}
		})
	}
}
