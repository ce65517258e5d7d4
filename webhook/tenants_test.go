package webhook_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// tenants is one private registry (Basic auth) seen through two entries: a
// scoped one with credentials for team-a only, and an anonymous catch-all
// for everyone else, which the registry refuses.
type tenants struct {
	srv    *registrytest.Server
	http   *httptest.Server
	digest string
	cfg    atomic.Pointer[config.Config]
}

func newTenants(t *testing.T, policy string) *tenants {
	t.Helper()
	tn := &tenants{srv: registrytest.New(t, registrytest.WithBasic("u", "p"))}
	tn.digest = tn.srv.PushImage(t, "team-a/app:1")
	tn.setConfig(t, policy)
	h := webhook.NewHandler(func() *config.Config { return tn.cfg.Load() }, resolver.New())
	tn.http = httptest.NewServer(&admission.Webhook{Handler: h})
	t.Cleanup(tn.http.Close)
	return tn
}

func (tn *tenants) setConfig(t *testing.T, policy string) {
	t.Helper()
	doc := fmt.Sprintf(`registries:
- name: team-a
  api_url: %[1]s
  prefix: %[2]s/team-a
  credentials: env:TEAM_A
  namespaces: [team-a]
- name: public
  api_url: %[1]s
  prefix: %[2]s
%[3]s`, tn.srv.URL, tn.srv.Host, policy)
	creds := credentials.New(credentials.WithEnvironment([]string{"TEAM_A=u:p"}))
	c, err := config.Parse([]byte(doc), registries.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	tn.cfg.Store(c)
}

func (tn *tenants) admit(t *testing.T, ns string) *admissionv1.AdmissionResponse {
	t.Helper()
	e := &env{http: tn.http}
	return e.admit(t, review(t, admissionv1.Create, ns, deployment(nil, tn.srv.Host+"/team-a/app:1"), nil))
}

func (tn *tenants) pinned(r *admissionv1.AdmissionResponse) bool {
	for _, o := range patchOfResp(r) {
		if s, ok := o.Value.(string); ok && strings.Contains(s, tn.digest) {
			return true
		}
	}
	return false
}

func patchOfResp(r *admissionv1.AdmissionResponse) []op {
	var t testing.T
	return patchOf(&t, r)
}

func TestANamespaceOutsideAnEntryIsNeverPinnedFromAnotherEntrysCache(t *testing.T) {
	tests := []struct{ name, policy string }{
		{"within the cache ttl", "policy:\n  on_error: ignore\n"},
		{"after the answer expired (last known good)", "policy:\n  on_error: ignore\n  cache_ttl: 0s\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTenants(t, tc.policy)
			if r := tn.admit(t, "team-a"); !tn.pinned(r) {
				t.Fatalf("team-a was not pinned: %+v %v", r.Result, r.Warnings)
			}
			r := tn.admit(t, "team-b")
			if tn.pinned(r) {
				t.Fatalf("team-b was pinned to team-a's private digest: %s", r.Patch)
			}
			if len(r.Warnings) == 0 {
				t.Errorf("team-b got no warning; the anonymous lookup must have failed")
			}
		})
	}
}

func TestAFailureOfOneEntryIsNeverServedToAnother(t *testing.T) {
	tn := newTenants(t, "policy:\n  on_error: fail\n")
	if r := tn.admit(t, "team-b"); r.Allowed {
		t.Fatalf("team-b's anonymous lookup of a private image was admitted: %s", r.Patch)
	}
	r := tn.admit(t, "team-a")
	if !r.Allowed || !tn.pinned(r) {
		t.Fatalf("team-a got team-b's cached failure: allowed=%v %v", r.Allowed, r.Result)
	}
}

func TestAReloadThatChangesAnEntrysCredentialsStartsItsCachesFresh(t *testing.T) {
	tn := newTenants(t, "policy:\n  on_error: fail\n")
	if r := tn.admit(t, "team-a"); !tn.pinned(r) {
		t.Fatalf("team-a was not pinned: %v", r.Result)
	}
	// The entry now names a credential the registry refuses: its answers
	// obtained with the old credential belong to the old identity.
	doc := fmt.Sprintf("registries:\n- name: team-a\n  api_url: %s\n  prefix: %s/team-a\n  credentials: env:WRONG\n  namespaces: [team-a]\npolicy:\n  on_error: fail\n", tn.srv.URL, tn.srv.Host)
	c, err := config.Parse([]byte(doc), registries.WithCredentials(credentials.New(credentials.WithEnvironment([]string{"WRONG=u:nope"}))))
	if err != nil {
		t.Fatal(err)
	}
	tn.cfg.Store(c)
	if r := tn.admit(t, "team-a"); r.Allowed {
		t.Fatalf("after the credential changed, team-a was served the old entry's answer: %s", r.Patch)
	}
}

func TestDotSegmentsAreRefusedNamingTheContainerWithoutAnyRegistryRequest(t *testing.T) {
	for _, onError := range []string{"ignore", "fail"} {
		t.Run(onError, func(t *testing.T) {
			tn := newTenants(t, "policy:\n  on_error: "+onError+"\n")
			tn.srv.Reset()
			e := &env{http: tn.http}
			ref := tn.srv.Host + "/team-b/../team-a/app:1"
			r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, ref), nil))
			if n := tn.srv.Total(); n != 0 {
				t.Errorf("the registry saw %d requests: %v", n, tn.srv.Received())
			}
			// Only original-images may be written: it records the image as
			// stored, pinned or not.
			if strings.Contains(string(r.Patch), "/spec/") {
				t.Errorf("patched an image: %s", r.Patch)
			}
			msg := strings.Join(r.Warnings, "\n")
			if onError == "fail" {
				if r.Allowed {
					t.Fatal("allowed under on_error: fail")
				}
				msg = r.Result.Message
			}
			if !strings.Contains(msg, `container "app"`) || !strings.Contains(msg, `".."`) {
				t.Errorf("message %q does not name the container and the segment", msg)
			}
		})
	}
}

func TestADenialIsCappedLikeWarnings(t *testing.T) {
	tn := newTenants(t, "policy:\n  on_error: fail\n")
	images := make([]string, 200)
	for i := range images {
		images[i] = fmt.Sprintf("%s/team-a/%s:1", tn.srv.Host, strings.Repeat("x", 200)+fmt.Sprint(i))
	}
	e := &env{http: tn.http}
	r := e.admit(t, review(t, admissionv1.Create, "team-b", deploymentOf(images...), nil))
	if r.Allowed {
		t.Fatal("allowed")
	}
	if n := len(r.Result.Message); n > 4096 {
		t.Errorf("the denial is %d bytes long, want at most 4096", n)
	}
	if !strings.Contains(r.Result.Message, "more") {
		t.Errorf("the denial does not say how many reasons it left out: %.200s…", r.Result.Message)
	}
}

func TestAnAdmissionLooksUpAtMostMaxLookupsImages(t *testing.T) {
	tn := newTenants(t, "policy:\n  on_error: ignore\n  max_lookups: 5\n")
	images := make([]string, 40)
	for i := range images {
		images[i] = fmt.Sprintf("%s/team-a/app%d:1", tn.srv.Host, i)
	}
	tn.srv.Reset()
	e := &env{http: tn.http}
	r := e.admit(t, review(t, admissionv1.Create, "team-a", deploymentOf(images...), nil))
	if n := tn.srv.Count("HEAD", "manifest") + tn.srv.Count("GET", "manifest"); n > 5*2 {
		t.Errorf("%d manifest requests for one admission, want at most 5 lookups", n)
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "policy.max_lookups") {
		t.Errorf("no warning names policy.max_lookups: %v", r.Warnings)
	}
}
