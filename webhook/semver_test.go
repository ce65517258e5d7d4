package webhook_test

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// semver needs a constraint from one of its sources; a missing one is a
// failure of that container, handled as on_error says, never a denial in
// report mode.
func TestSemverWithoutAConstraintFollowsOnError(t *testing.T) {
	tests := []struct {
		name, policy string
		ann          map[string]string
		allowed      bool
	}{
		{"the policy default under ignore warns", "policy:\n  strategy: semver\n", nil, true},
		{"the policy default under fail denies", "policy:\n  strategy: semver\n  on_error: fail\n", nil, false},
		{"the policy default in report mode warns", "policy:\n  strategy: semver\n  on_error: fail\n  mode: report\n", nil, true},
		{"an annotation under ignore warns", "", map[string]string{"image-pin.io/strategy": "semver"}, true},
		{"an annotation in report mode warns", "policy:\n  mode: report\n  on_error: fail\n", map[string]string{"image-pin.io/strategy.app": "semver"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withPolicy(tc.policy))
			r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(tc.ann, e.srv.Host+"/api:1.4.0"), nil))
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%v)", r.Allowed, tc.allowed, r.Result)
			}
			msg := told(r)
			if !strings.Contains(msg, "needs a constraint") || !strings.Contains(msg, `container "app"`) {
				t.Errorf("message %q does not say the container needs a constraint", msg)
			}
			if pinsImages(t, r) {
				t.Errorf("pinned: %s", r.Patch)
			}
		})
	}
}

func TestARuleWithSemverTakesItsConstraintFromAnAnnotation(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	e.setConfig(t, withPolicy("policy:\n  images:\n  - prefix: "+host+"/api\n    strategy: semver\n"))
	r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(map[string]string{"image-pin.io/constraint": "~1.4"}, host+"/api"), nil))
	assertPatch(t, r, []op{
		{"replace", "/spec/template/spec/containers/0/image", host + "/api:v1.4.7@" + e.digests["api:v1.4.7"]},
		{"add", "/metadata/annotations/image-pin.io~1original-images", originals("app", host+"/api")},
	})
}
