package webhook_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
	"github.com/image-pin/image-pin-webhook/webhook"
)

const pullSecretValue = "pull-s3cr3t-" // + user: must never appear in any answer

// pullSecretTenants is one registry on which team-a/ belongs to robot a and
// team-b/ to robot b, behind one entry whose credentials are
// imagepullsecrets; namespaces team-a and team-b each hold their robot's
// pull secret, team-c holds none.
type pullSecretTenants struct {
	env
	reader  client.Client
	digestA string
	digestB string
}

func newPullSecretTenants(t *testing.T, policy string) *pullSecretTenants {
	t.Helper()
	p := &pullSecretTenants{}
	p.srv = registrytest.New(t)
	p.digestA = p.srv.PushImage(t, "team-a/app:1")
	p.digestB = p.srv.PushImage(t, "team-b/app:1")
	p.srv.AuthPerRepository(map[string]string{"team-a": "a", "team-b": "b"}, func(u string) string { return pullSecretValue + u })
	p.reader = fake.NewClientBuilder().WithObjects(
		dockerSecret("team-a", "regcred", p.srv.Host, "a"),
		dockerSecret("team-b", "regcred", p.srv.Host, "b"),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "default"}},
	).Build()
	doc := fmt.Sprintf("registries:\n- name: shared\n  api_url: %s\n  prefix: %s\n  credentials: imagepullsecrets\n%s", p.srv.URL, p.srv.Host, policy)
	c, err := config.Parse([]byte(doc), registries.WithCredentials(credentials.New(credentials.WithSecretReader(p.reader))))
	if err != nil {
		t.Fatal(err)
	}
	p.cfg.Store(c)
	p.res = resolver.New()
	p.http = httptest.NewServer(&admission.Webhook{Handler: webhook.NewHandler(func() *config.Config { return p.cfg.Load() }, p.res)})
	t.Cleanup(p.http.Close)
	return p
}

func dockerSecret(ns, name, host, user string) *corev1.Secret {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pullSecretValue + user))
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth))},
	}
}

// admit admits a Deployment of image in ns that names pullSecrets.
func (p *pullSecretTenants) admit(t *testing.T, ns, repo string, pullSecrets ...string) *admissionv1.AdmissionResponse {
	t.Helper()
	d := deployment(nil, p.srv.Host+"/"+repo+":1")
	d.Namespace = ns
	for _, s := range pullSecrets {
		d.Spec.Template.Spec.ImagePullSecrets = append(d.Spec.Template.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	r := p.env.admit(t, review(t, admissionv1.Create, ns, d, nil))
	all := string(r.Patch) + strings.Join(r.Warnings, "\n")
	if r.Result != nil {
		all += r.Result.Message
	}
	if strings.Contains(all, pullSecretValue) {
		t.Fatalf("a credential appears in the answer: %s", all)
	}
	return r
}

// pinnedTo reports whether the answer pins the image to digest.
func pinnedTo(r *admissionv1.AdmissionResponse, digest string) bool {
	return r.Allowed && strings.Contains(string(r.Patch), digest)
}

func TestEachNamespaceIsPinnedOnlyWithWhatItsOwnPullSecretsCanRead(t *testing.T) {
	for _, tc := range []struct{ name, policy string }{
		{"within the cache ttl", "policy:\n  on_error: ignore\n"},
		{"after the answer expired (last known good)", "policy:\n  on_error: ignore\n  cache_ttl: 1ms\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPullSecretTenants(t, tc.policy)
			// team-a first: its answer (and its transport) is cached when
			// the others ask for the same image.
			if r := p.admit(t, "team-a", "team-a/app", "regcred"); !pinnedTo(r, p.digestA) {
				t.Fatalf("team-a was not pinned with its own pull secret: %s %v", r.Patch, r.Warnings)
			}
			for _, tc := range []struct {
				name, ns string
				secrets  []string
				why      string // what the warning says was presented
			}{
				{"another namespace's pull secret", "team-b", []string{"regcred"}, "Secret team-b/regcred"},
				{"no pull secret at all", "team-c", nil, "presented no credential"},
			} {
				r := p.admit(t, tc.ns, "team-a/app", tc.secrets...)
				if pinnedTo(r, p.digestA) {
					t.Fatalf("%s (%s) was served team-a's digest: %s", tc.ns, tc.name, r.Patch)
				}
				if w := strings.Join(r.Warnings, "\n"); !strings.Contains(w, tc.why) {
					t.Errorf("%s: warnings %q, want the failed lookup saying %q", tc.ns, w, tc.why)
				}
			}
			if r := p.admit(t, "team-b", "team-b/app", "regcred"); !pinnedTo(r, p.digestB) {
				t.Fatalf("team-b was not pinned with its own pull secret: %s %v", r.Patch, r.Warnings)
			}
			if r := p.admit(t, "team-a", "team-b/app", "regcred"); pinnedTo(r, p.digestB) {
				t.Fatalf("team-a was served team-b's digest: %s", r.Patch)
			}
		})
	}
}

func TestAFailureWithOnePullSecretIsNeverServedToAnother(t *testing.T) {
	p := newPullSecretTenants(t, "policy:\n  on_error: fail\n")
	if r := p.admit(t, "team-b", "team-a/app", "regcred"); r.Allowed {
		t.Fatalf("team-b's lookup with its own pull secret of team-a's image was admitted: %s", r.Patch)
	}
	if r := p.admit(t, "team-a", "team-a/app", "regcred"); !pinnedTo(r, p.digestA) {
		t.Fatalf("team-a got team-b's failure: %v", r.Result)
	}
}

func TestAPullSecretsAnswerIsCachedUntilTheSecretChanges(t *testing.T) {
	p := newPullSecretTenants(t, "policy:\n  on_error: fail\n")
	if r := p.admit(t, "team-a", "team-a/app", "regcred"); !pinnedTo(r, p.digestA) {
		t.Fatalf("not pinned: %v", r.Result)
	}
	p.srv.Reset()
	if r := p.admit(t, "team-a", "team-a/app", "regcred"); !pinnedTo(r, p.digestA) {
		t.Fatalf("not pinned: %v", r.Result)
	}
	if n := p.srv.Total(); n != 0 {
		t.Errorf("the same Secrets asked the registry again (%d requests): the answer was not cached", n)
	}
	// The Secret now holds team-b's robot: a new resourceVersion, a new
	// identity, and a lookup that fails.
	var s corev1.Secret
	if err := p.reader.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "regcred"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data = dockerSecret("team-a", "regcred", p.srv.Host, "b").Data
	if err := p.reader.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	if r := p.admit(t, "team-a", "team-a/app", "regcred"); r.Allowed {
		t.Fatalf("after the Secret changed, team-a was served the answer of its old credential: %s", r.Patch)
	}
}

func TestAMissingPullSecretFollowsOnErrorNamingIt(t *testing.T) {
	for _, onError := range []string{"ignore", "fail"} {
		t.Run(onError, func(t *testing.T) {
			p := newPullSecretTenants(t, "policy:\n  on_error: "+onError+"\n")
			p.srv.Reset()
			r := p.admit(t, "team-a", "team-a/app", "missing")
			if onError == "fail" {
				if r.Allowed {
					t.Fatalf("allowed under on_error: fail: %s", r.Patch)
				}
			} else if !r.Allowed || strings.Contains(string(r.Patch), "/spec/") {
				t.Fatalf("want admitted unchanged: allowed=%v %s", r.Allowed, r.Patch)
			}
			msg := told(r)
			if !strings.Contains(msg, `container "app"`) || !strings.Contains(msg, "Secret team-a/missing") {
				t.Errorf("message %q does not name the container and the Secret", msg)
			}
			if n := p.srv.Total(); n != 0 {
				t.Errorf("the registry saw %d requests", n)
			}
		})
	}
}

func TestAnAnonymousFailureSharedBetweenNamespacesNamesNeitherNamespace(t *testing.T) {
	p := newPullSecretTenants(t, "policy:\n  on_error: fail\n")
	if err := p.reader.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-d", Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	// team-c and team-d present no pull secret: their lookups are
	// anonymous and share one identity, so team-c's failure is cached
	// where team-d's lookup finds it. It must not tell team-d about team-c.
	if r := p.admit(t, "team-c", "team-a/app"); r.Allowed {
		t.Fatalf("team-c's anonymous lookup of a private image was admitted: %s", r.Patch)
	}
	r := p.admit(t, "team-d", "team-a/app")
	if r.Allowed {
		t.Fatalf("team-d's anonymous lookup of a private image was admitted: %s", r.Patch)
	}
	if strings.Contains(r.Result.Message, "team-c") {
		t.Errorf("team-d's denial names team-c, whose failure it was served: %s", r.Result.Message)
	}
}
