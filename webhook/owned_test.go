package webhook_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func podOwnedBy(apiVersion, kind string, images ...string) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc-xyz", Namespace: "team-a"},
	}
	if kind != "" {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "web-abc", UID: "u", Controller: ptr(true)}}
	}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: containerName([]string{"app", "istio-proxy"}, i), Image: img})
	}
	return p
}

// A Pod of a workload runs what its template says: the webhook decided the
// template when it was admitted, left it alone when the workload opted out,
// and a Pod resolved on its own would run another digest than its replicas.
func TestPodsOfAWorkloadAreNotResolvedOnTheirOwn(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	for _, owner := range []struct{ apiVersion, kind string }{
		{"apps/v1", "ReplicaSet"}, {"apps/v1", "StatefulSet"}, {"apps/v1", "DaemonSet"}, {"batch/v1", "Job"}, {"v1", "ReplicationController"},
	} {
		t.Run(owner.kind, func(t *testing.T) {
			r := e.admit(t, review(t, admissionv1.Create, "team-a", podOwnedBy(owner.apiVersion, owner.kind, host+"/app:1", host+"/debug:1"), nil))
			assertPatch(t, r, nil)
		})
	}
	t.Run("nor are they denied for their annotations", func(t *testing.T) {
		p := podOwnedBy("apps/v1", "ReplicaSet", host+"/app:1")
		p.Annotations = map[string]string{"image-pin.io/strategy": "bogus"}
		assertPatch(t, e.admit(t, review(t, admissionv1.Create, "team-a", p, nil)), nil)
	})
}

func TestPodsOfOtherControllersAreResolvedOnTheirOwn(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	tests := []struct{ name, apiVersion, kind string }{
		{"a bare Pod", "", ""},
		{"a Pod of a custom resource, whose template the webhook never sees", "example.com/v1", "Workflow"},
		{"a Pod whose owner merely shares a kind name", "example.com/v1", "ReplicaSet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := podOwnedBy(tc.apiVersion, tc.kind, host+"/app:1", host+"/debug:1")
			// A sidecar skipped by the pod template's annotations, which are the Pod's.
			p.Annotations = map[string]string{"image-pin.io/strategy.istio-proxy": "skip"}
			r := e.admit(t, review(t, admissionv1.Create, "team-a", p, nil))
			assertPatch(t, r, []op{
				{"replace", "/spec/containers/0/image", e.pinned("REGISTRY/app:1", "app:1")},
				{"add", "/metadata/annotations/image-pin.io~1original-images", originals("app", host+"/app:1", "istio-proxy", host+"/debug:1")},
			})
		})
	}
}

func TestKubectlDebugOnAPodOfAWorkloadIsPinned(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	old := podOwnedBy("apps/v1", "ReplicaSet", host+"/app:1")
	p := old.DeepCopy()
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: host + "/debug:1"}}}
	var rev map[string]any
	_ = json.Unmarshal(review(t, admissionv1.Update, "team-a", p, old), &rev)
	rev["request"].(map[string]any)["subResource"] = "ephemeralcontainers"
	body, _ := json.Marshal(rev)
	assertPatch(t, e.admit(t, body), []op{{"replace", "/spec/ephemeralContainers/0/image", e.pinned("REGISTRY/debug:1", "debug:1")}})
}

// An update that changes no image and no image-pin.io/ annotation, such as a
// controller removing a finalizer, is never denied for an annotation.
func TestAMalformedAnnotationNeverBlocksUnrelatedUpdates(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	bad := map[string]string{"image-pin.io/strategy": "newest"}
	withFinalizer := func(d *appsv1.Deployment) *appsv1.Deployment {
		d.Finalizers = []string{"example.com/cleanup"}
		return d
	}
	terminating := func(d *appsv1.Deployment) *appsv1.Deployment {
		d.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
		return d
	}
	tests := []struct {
		name     string
		obj, old *appsv1.Deployment
		denied   bool
		// wantWarning: an admitted update's warnings name the bad
		// annotation, except an object being deleted's, which is left alone.
		wantWarning bool
	}{
		{"removing a finalizer from an object being deleted", terminating(deployment(bad, host+"/app:1")), terminating(withFinalizer(deployment(bad, host+"/app:1"))), false, false},
		{"an update of an object being deleted that changes an image", terminating(deployment(bad, host+"/api:1.5.0")), terminating(deployment(bad, host+"/app:1")), false, false},
		{"a label edit", func() *appsv1.Deployment {
			d := deployment(bad, host+"/app:1")
			d.Labels = map[string]string{"x": "y"}
			return d
		}(), deployment(bad, host+"/app:1"), false, true},
		{"a rollout restart", withRestart(deployment(bad, host+"/app:1"), "2026-11-26T10:00:00Z"), deployment(bad, host+"/app:1"), false, true},
		{"an image change", deployment(bad, host+"/api:1.5.0"), deployment(bad, host+"/app:1"), true, false},
		{"an annotation change", deployment(map[string]string{"image-pin.io/strategy": "newer"}, host+"/app:1"), deployment(bad, host+"/app:1"), true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.admit(t, review(t, admissionv1.Update, "team-a", tc.obj, tc.old))
			if r.Allowed == tc.denied {
				t.Fatalf("allowed = %v, want %v (%v)", r.Allowed, !tc.denied, r.Result)
			}
			if tc.denied {
				return
			}
			if pinsImages(t, r) {
				t.Errorf("patched images: %s", r.Patch)
			}
			if tc.wantWarning != strings.Contains(strings.Join(r.Warnings, "\n"), "image-pin.io/strategy") {
				t.Errorf("warnings %q; want them to name the annotation: %v", r.Warnings, tc.wantWarning)
			}
		})
	}
}
