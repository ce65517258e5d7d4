package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
	"github.com/image-pin/image-pin-webhook/webhook"
)

type env struct {
	srv     *registrytest.Server
	cfg     atomic.Pointer[config.Config]
	res     *resolver.Resolver
	http    *httptest.Server
	digests map[string]string
}

// newEnv starts a registry with sample images and a handler whose config
// has one entry, test, pointing at it.
func newEnv(t *testing.T, opts ...configOption) *env {
	t.Helper()
	e := &env{srv: registrytest.New(t), digests: map[string]string{}}
	for _, rt := range []string{"app:1", "init:latest", "debug:1", "api:1.4.0", "api:v1.4.7", "api:1.5.0", "api:2.0.0-rc1"} {
		e.digests[rt] = e.srv.PushImage(t, rt)
	}
	e.setConfig(t, opts...)
	e.res = resolver.New()
	h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, e.res, webhook.WithOwnNamespace("image-pin-system"))
	e.http = httptest.NewServer(webhook.Serve(h, logr.Discard())) // as cmd/webhook serves /mutate
	t.Cleanup(e.http.Close)
	return e
}

func (e *env) setConfig(t *testing.T, opts ...configOption) {
	t.Helper()
	e.cfg.Store(configFor(t, e.srv, opts...))
}

// testConfig is the YAML a test adds to configFor's document.
type testConfig struct {
	entry  string // appended to the entry's fields
	policy string // the policy block
}

type configOption func(*testConfig)

// withEntry appends fields to the registry entry, e.g. "  limit: 5\n".
func withEntry(yaml string) configOption { return func(c *testConfig) { c.entry += yaml } }

// withPolicy sets the policy block, e.g. "policy:\n  mode: report\n".
func withPolicy(yaml string) configOption { return func(c *testConfig) { c.policy = yaml } }

// configFor is a config with one registry entry, test, for srv.
func configFor(tb testing.TB, srv *registrytest.Server, opts ...configOption) *config.Config {
	tb.Helper()
	var tc testConfig
	for _, o := range opts {
		o(&tc)
	}
	doc := fmt.Sprintf("registries:\n- name: test\n  api_url: %s\n  prefix: %s\n%s%s", srv.URL, srv.Host, tc.entry, tc.policy)
	c, err := config.Parse([]byte(doc), registries.WithCredentials(credentials.New()))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// pinned is how the handler writes repo:tag pinned on this registry.
func (e *env) pinned(written, repoTag string) string {
	return strings.ReplaceAll(written, "REGISTRY", e.srv.Host) + "@" + e.digests[repoTag]
}

func (e *env) fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("REGISTRY"), []byte(e.srv.Host))
}

// admit posts body as the API server does and returns the response.
func (e *env) admit(t *testing.T, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	resp, err := http.Post(e.http.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
		t.Fatalf("the response is not an AdmissionReview: %v", err)
	}
	if review.Response == nil {
		t.Fatal("no response in the AdmissionReview")
	}
	return review.Response
}

type op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

func patchOf(t *testing.T, r *admissionv1.AdmissionResponse) []op {
	t.Helper()
	if len(r.Patch) == 0 {
		return nil
	}
	var ops []op
	if err := json.Unmarshal(r.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	return ops
}

func assertPatch(t *testing.T, r *admissionv1.AdmissionResponse, want []op) {
	t.Helper()
	if !r.Allowed {
		t.Fatalf("denied: %v", r.Result)
	}
	got, _ := json.Marshal(patchOf(t, r))
	w, _ := json.Marshal(want)
	if len(want) == 0 {
		w = []byte("null")
	}
	if string(got) != string(w) {
		t.Errorf("patch\n got %s\nwant %s", got, w)
	}
	// The API server applies a patch only with its type.
	if pt := r.PatchType; len(want) > 0 && (pt == nil || *pt != admissionv1.PatchTypeJSONPatch) {
		t.Errorf("patch type %v, want JSONPatch", pt)
	}
}

func originals(kv ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestEveryKindIsPinnedWithAnExactMinimalPatch(t *testing.T) {
	e := newEnv(t)
	tests := []struct{ fixture, spec string }{
		{"pod", "/spec"},
		{"podtemplate", "/template/spec"},
		{"replicationcontroller", "/spec/template/spec"},
		{"deployment", "/spec/template/spec"},
		{"statefulset", "/spec/template/spec"},
		{"daemonset", "/spec/template/spec"},
		{"replicaset", "/spec/template/spec"},
		{"job", "/spec/template/spec"},
		{"cronjob", "/spec/jobTemplate/spec/template/spec"},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			r := e.admit(t, e.fixture(t, tc.fixture))
			orig := originals("app", e.srv.Host+"/app:1", "init", e.srv.Host+"/init", "sidecar", "quay.io/other/sidecar:1")
			assertPatch(t, r, []op{
				{"replace", tc.spec + "/initContainers/0/image", e.pinned("REGISTRY/init:latest", "init:latest")},
				{"replace", tc.spec + "/containers/0/image", e.pinned("REGISTRY/app:1", "app:1")},
				{"add", "/metadata/annotations", map[string]any{webhook.OriginalImagesKey: orig}},
			})
		})
	}
}

func TestKubectlDebugEphemeralContainersArePinned(t *testing.T) {
	e := newEnv(t)
	r := e.admit(t, e.fixture(t, "pod-ephemeralcontainers"))
	assertPatch(t, r, []op{{"replace", "/spec/ephemeralContainers/0/image", e.pinned("REGISTRY/debug:1", "debug:1")}})
}

// review wraps objects in an AdmissionReview as the API server sends it.
func review(t testing.TB, op admissionv1.Operation, ns string, obj, old any) []byte {
	t.Helper()
	raw := func(o any) runtimeRaw {
		if o == nil {
			return nil
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gvk := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	if _, ok := obj.(*corev1.Pod); ok {
		gvk = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	}
	if _, ok := obj.(*appsv1.ReplicaSet); ok {
		gvk.Kind = "ReplicaSet"
	}
	if _, ok := obj.(*batchv1.Job); ok {
		gvk = metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}
	}
	body := map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "11111111-2222-3333-4444-555555555555", "kind": gvk,
			"resource":  map[string]string{"group": gvk.Group, "version": "v1", "resource": strings.ToLower(gvk.Kind) + "s"},
			"namespace": ns, "name": "demo", "operation": op,
			"object": raw(obj), "oldObject": raw(old),
		},
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type runtimeRaw = json.RawMessage

func deployment(ann map[string]string, images ...string) *appsv1.Deployment {
	names := []string{"app", "side", "third"}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "team-a", Annotations: ann},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "demo"}},
		}},
	}
	for i, img := range images {
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: containerName(names, i), Image: img})
	}
	return d
}

func TestObjectsThatMustNotChangeGetNoPatch(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	owned := &appsv1.ReplicaSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "demo-abc", Namespace: "team-a", OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "demo", UID: "u", Controller: ptr(true)}}},
		Spec:       appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: host + "/app:1"}}}}},
	}
	ownedJob := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: "nightly-29000", Namespace: "team-a", OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "nightly", UID: "u", Controller: ptr(true)}}},
		Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: host + "/app:1"}}}}},
	}
	skipped := deployment(nil, host+"/app:1")
	skipped.Labels = map[string]string{"image-pin.io/skip": "true"}
	tests := []struct {
		name string
		body []byte
	}{
		{"an object labelled image-pin.io/skip=true", review(t, admissionv1.Create, "team-a", skipped, nil)},
		{"an object in kube-system", review(t, admissionv1.Create, "kube-system", deployment(nil, host+"/app:1"), nil)},
		{"an object in the webhook's own namespace", review(t, admissionv1.Create, "image-pin-system", deployment(nil, host+"/app:1"), nil)},
		{"a ReplicaSet owned by a Deployment", review(t, admissionv1.Create, "team-a", owned, nil)},
		{"a Job owned by a CronJob", review(t, admissionv1.Create, "team-a", ownedJob, nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertPatch(t, e.admit(t, tc.body), nil)
		})
	}
	// Images the webhook leaves alone in an object it handles: only the
	// record of what was written is added.
	images := []struct {
		name  string
		ann   map[string]string
		image string
	}{
		{"an image that already carries a digest", nil, host + "/app:1@" + e.digests["app:1"]},
		{"an image of an unconfigured registry", nil, "quay.io/x/y:1"},
		{"a container with strategy skip", map[string]string{"image-pin.io/strategy.app": "skip"}, host + "/app:1"},
	}
	for _, tc := range images {
		t.Run(tc.name, func(t *testing.T) {
			r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(tc.ann, tc.image), nil))
			rec := op{"add", "/metadata/annotations", map[string]any{webhook.OriginalImagesKey: originals("app", tc.image)}}
			if tc.ann != nil {
				rec = op{"add", "/metadata/annotations/image-pin.io~1original-images", originals("app", tc.image)}
			}
			assertPatch(t, r, []op{rec})
		})
	}
}

// pinsImages reports whether a patch changes an image.
func pinsImages(t *testing.T, r *admissionv1.AdmissionResponse) bool {
	for _, o := range patchOf(t, r) {
		if strings.HasSuffix(o.Path, "/image") {
			return true
		}
	}
	return false
}

// told is what an admission told the user: its denial's message if it was
// denied, else its warnings.
func told(r *admissionv1.AdmissionResponse) string {
	if !r.Allowed {
		return r.Result.Message
	}
	return strings.Join(r.Warnings, "\n")
}

func TestReadmittingItsOwnOutputChangesNothing(t *testing.T) {
	e := newEnv(t)
	for _, f := range []string{"deployment", "cronjob", "pod"} {
		first := e.admit(t, e.fixture(t, f))
		var rev map[string]any
		_ = json.Unmarshal(e.fixture(t, f), &rev)
		objRaw, _ := json.Marshal(rev["request"].(map[string]any)["object"])
		patched := applyPatch(t, objRaw, first.Patch)
		rev["request"].(map[string]any)["object"] = json.RawMessage(patched)
		again, _ := json.Marshal(rev)
		assertPatch(t, e.admit(t, again), nil)
	}
}

func TestAnnotationsSteerTheChoiceOfTag(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	tests := []struct {
		name  string
		ann   map[string]string
		image string
		want  string
	}{
		{"a constraint picks the newest match and implies semver", map[string]string{"image-pin.io/constraint": "~1.4"}, host + "/api", host + "/api:v1.4.7@" + e.digests["api:v1.4.7"]},
		{"a per-container constraint wins over the object's", map[string]string{"image-pin.io/constraint": "~1.4", "image-pin.io/constraint.app": "^1"}, host + "/api:1.4.0", host + "/api:1.5.0@" + e.digests["api:1.5.0"]},
		{"a pre-release is chosen when the constraint names one", map[string]string{"image-pin.io/constraint": ">=2.0.0-0"}, host + "/api", host + "/api:2.0.0-rc1@" + e.digests["api:2.0.0-rc1"]},
		{"ignore-tags filters the candidates", map[string]string{"image-pin.io/constraint": "^1", "image-pin.io/ignore-tags": "1.5*, v1.4.7"}, host + "/api", host + "/api:1.4.0@" + e.digests["api:1.4.0"]},
		{"allow-tags filters the candidates", map[string]string{"image-pin.io/strategy": "alphabetical", "image-pin.io/allow-tags": `regexp:^1\.`}, host + "/api", host + "/api:1.5.0@" + e.digests["api:1.5.0"]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(tc.ann, tc.image), nil))
			assertPatch(t, r, []op{
				{"replace", "/spec/template/spec/containers/0/image", tc.want},
				{"add", "/metadata/annotations/image-pin.io~1original-images", originals("app", tc.image)},
			})
		})
	}
}

func TestMalformedAnnotationsAreDeniedNamingThem(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		ann  map[string]string
		want string
	}{
		{map[string]string{"image-pin.io/strategy": "newest"}, "image-pin.io/strategy"},
		{map[string]string{"image-pin.io/constraint.app": ">= banana"}, "image-pin.io/constraint.app"},
		{map[string]string{"image-pin.io/allow-tags": "^v1"}, "image-pin.io/allow-tags"},
		{map[string]string{"image-pin.io/ignore-tags": "[", "image-pin.io/strategy": "digest"}, "image-pin.io/ignore-tags"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(tc.ann, e.srv.Host+"/api:1.4.0"), nil))
			if r.Allowed || !strings.Contains(r.Result.Message, tc.want) {
				t.Fatalf("allowed=%v message=%q, want a denial naming %s", r.Allowed, r.Result.Message, tc.want)
			}
		})
	}
}

func TestUnknownAnnotationsAndContainersGetWarnings(t *testing.T) {
	e := newEnv(t)
	r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(map[string]string{
		"image-pin.io/stratgy": "digest", "image-pin.io/strategy.nosuch": "skip",
	}, e.srv.Host+"/app:1"), nil))
	if !r.Allowed || len(patchOf(t, r)) == 0 {
		t.Fatalf("not pinned: %+v", r)
	}
	all := strings.Join(r.Warnings, "\n")
	for _, w := range []string{"image-pin.io/stratgy", `no container "nosuch"`} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings %q lack %q", all, w)
		}
	}
}

func TestReportModeWarnsAndNeverPatches(t *testing.T) {
	e := newEnv(t, withPolicy("policy:\n  mode: report\n"))
	r := e.admit(t, e.fixture(t, "deployment"))
	assertPatch(t, r, nil)
	if all := strings.Join(r.Warnings, "\n"); !strings.Contains(all, "would be pinned to") || !strings.Contains(all, e.digests["app:1"]) {
		t.Errorf("warnings = %q", all)
	}
}

func TestRegistryFailuresFollowOnError(t *testing.T) {
	host := ""
	tests := []struct {
		name, extra, policy string
		warmFirst, allowed  bool
		pinned              bool
	}{
		{"ignore admits unchanged with a warning", "", "policy:\n  on_error: ignore\n", false, true, false},
		{"ignore pins to the last known digest", "", "policy:\n  on_error: ignore\n  cache_ttl: 0s\n", true, true, true},
		{"fail denies", "", "policy:\n  on_error: fail\n", false, false, false},
		{"the entry's on_error overrides the policy's", "  on_error: fail\n", "policy:\n  on_error: ignore\n", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withEntry(tc.extra), withPolicy(tc.policy))
			host = e.srv.Host
			body := review(t, admissionv1.Create, "team-a", deployment(nil, host+"/app:1"), nil)
			if tc.warmFirst {
				e.admit(t, body) // cache_ttl 0: remembered as last known good only
			}
			e.srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return true
			})
			r := e.admit(t, body)
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%v)", r.Allowed, tc.allowed, r.Result)
			}
			msg := told(r)
			for _, w := range []string{`container "app"`, host + "/app:1", "503"} {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if got := pinsImages(t, r); got != tc.pinned {
				t.Errorf("pinned = %v, want %v", got, tc.pinned)
			}
		})
	}
}

func TestUpdatesFollowTheContract(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	orig := host + "/app:1"
	pinnedOld := orig + "@" + e.digests["app:1"]
	recorded := map[string]string{webhook.OriginalImagesKey: originals("app", orig)}
	// The webhook pins the object (its answer is what a re-apply keeps),
	// then the tag moves.
	e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, orig), nil))
	moved := e.srv.PushImage(t, "app:1")
	restartedAt := func(d *appsv1.Deployment, ts string) *appsv1.Deployment {
		d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": ts}
		return d
	}
	// A lookup is two requests: GET /v2/ and a HEAD of the manifest; one
	// HEAD for a repository looked up before (app, at the CREATE).
	tests := []struct {
		name         string
		obj, old     *appsv1.Deployment
		want         []op
		wantRequests int
	}{
		{"an unrelated update keeps the pin while the tag moved", deployment(recorded, pinnedOld), deployment(recorded, pinnedOld), nil, 0},
		{"a re-apply of the original manifest gets the old pin back without a lookup", deployment(recorded, orig), deployment(recorded, pinnedOld),
			[]op{{"replace", "/spec/template/spec/containers/0/image", pinnedOld}}, 0},
		{"an apply that drops the annotation gets it back", deployment(nil, orig), deployment(recorded, pinnedOld),
			[]op{{"replace", "/spec/template/spec/containers/0/image", pinnedOld}, {"add", "/metadata/annotations", map[string]any{webhook.OriginalImagesKey: originals("app", orig)}}}, 0},
		{"a new image is resolved anew", deployment(recorded, host+"/api:1.5.0"), deployment(recorded, pinnedOld),
			[]op{{"replace", "/spec/template/spec/containers/0/image", host + "/api:1.5.0@" + e.digests["api:1.5.0"]}, {"replace", "/metadata/annotations/image-pin.io~1original-images", originals("app", host+"/api:1.5.0")}}, 2},
		{"a rollout restart re-resolves from the original with a fresh lookup",
			restartedAt(deployment(recorded, pinnedOld), "2026-11-26T10:00:00Z"), restartedAt(deployment(recorded, pinnedOld), "2026-11-25T10:00:00Z"),
			[]op{{"replace", "/spec/template/spec/containers/0/image", orig + "@" + moved}}, 1},
		{"a rollout undo is left exactly as asked",
			restartedAt(deployment(recorded, pinnedOld), "2026-11-24T10:00:00Z"), restartedAt(deployment(recorded, orig+"@"+moved), "2026-11-26T10:00:00Z"), nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.srv.Reset()
			r := e.admit(t, review(t, admissionv1.Update, "team-a", tc.obj, tc.old))
			assertPatch(t, r, tc.want)
			if n := e.srv.Total(); n != tc.wantRequests {
				t.Errorf("%d registry requests %v, want %d", n, e.srv.Received(), tc.wantRequests)
			}
		})
	}
}

func TestBadInputGetsAWellFormedAnswerNamingIt(t *testing.T) {
	e := newEnv(t)
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":"not-a-list"}}`
	mk := func(kind, obj string) []byte {
		return []byte(fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":%s,"resource":{"version":"v1","resource":"x"},"operation":"CREATE","namespace":"team-a","object":%s}}`, kind, obj))
	}
	tests := []struct {
		name    string
		body    []byte
		allowed bool
		want    string
	}{
		{"an object that does not match its kind is refused", mk(`{"version":"v1","kind":"Pod"}`, pod), false, "not a valid Pod"},
		{"an unknown kind is admitted unchanged with a warning", mk(`{"group":"example.com","version":"v1","kind":"Widget"}`, `{}`), true, "not supported"},
		{"a wrong API version of a known kind is admitted unchanged with a warning", mk(`{"group":"apps","version":"v1beta1","kind":"Deployment"}`, `{}`), true, "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.admit(t, tc.body)
			msg := strings.Join(r.Warnings, "\n")
			if r.Result != nil {
				msg += r.Result.Message
			}
			if r.Allowed != tc.allowed || !strings.Contains(msg, tc.want) || len(r.Patch) != 0 {
				t.Errorf("allowed=%v message=%q patch=%s, want allowed=%v and %q", r.Allowed, msg, r.Patch, tc.allowed, tc.want)
			}
		})
	}
	resp, err := http.Post(e.http.URL, "application/json", strings.NewReader("not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a non-JSON body got %s", resp.Status)
	}
}

func TestAnAdmissionIsAnsweredWithinResolveTimeout(t *testing.T) {
	e := newEnv(t, withPolicy("policy:\n  resolve_timeout: 300ms\n  on_error: fail\n"))
	e.srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
		return true
	})
	start := time.Now()
	r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, e.srv.Host+"/app:1"), nil))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("answered after %s", took)
	}
	if r.Allowed {
		t.Error("a timed-out lookup under fail was admitted")
	}
}

func ptr[T any](v T) *T { return &v }

func containerName(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("c%d", i)
}

func container(name, image string) corev1.Container {
	return corev1.Container{Name: name, Image: image}
}
