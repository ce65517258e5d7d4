package envtest

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The UPDATE shapes kubectl sends, on the real API server. The sequences are
// those of issue 11: after each step the Deployment must hold what the user
// last asked for.

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// setImage is kubectl set image: a strategic merge patch of one image.
func setImage(t *testing.T, d *appsv1.Deployment, ctr, image string) {
	t.Helper()
	patch := map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []map[string]string{{"name": ctr, "image": image}}}}}}
	rawPatch(t, d, types.StrategicMergePatchType, patch)
}

// rolloutRestart is kubectl rollout restart: the template's restartedAt.
// Each call is later than the last, as seconds would be on a real cluster.
func rolloutRestart(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	n := restarts.Add(1)
	ts := time.Now().Add(time.Duration(n) * time.Second).UTC().Format(time.RFC3339)
	patch := map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{"kubectl.kubernetes.io/restartedAt": ts}}}}}
	rawPatch(t, d, types.StrategicMergePatchType, patch)
}

// restarts counts rolloutRestart's calls, from tests running side by side.
var restarts atomic.Int64

// rolloutUndo is kubectl rollout undo: a JSON patch putting back the
// template of an earlier revision and the annotations its ReplicaSet carries
// (the Deployment controller copies the Deployment's annotations to it).
func rolloutUndo(t *testing.T, d, revision *appsv1.Deployment) {
	t.Helper()
	ann := map[string]string{}
	for k, v := range revision.Annotations {
		if k != lastApplied {
			ann[k] = v
		}
	}
	patch := []map[string]any{
		{"op": "replace", "path": "/spec/template", "value": revision.Spec.Template},
		{"op": "replace", "path": "/metadata/annotations", "value": ann},
	}
	rawPatch(t, d, types.JSONPatchType, patch)
}

func rawPatch(t *testing.T, d *appsv1.Deployment, pt types.PatchType, patch any) {
	t.Helper()
	b, err := json.Marshal(patch)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := kube(t)
	if err := c.Patch(ctx(t), d, client.RawPatch(pt, b)); err != nil {
		t.Fatalf("%s patch %s: %v", pt, b, err)
	}
}

// clientSideApply is kubectl apply: a three-way strategic merge patch of the
// last applied manifest, the new one and the live object; create when absent.
func clientSideApply(t *testing.T, manifest *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	c, _ := kube(t)
	m := manifest.DeepCopy()
	m.APIVersion, m.Kind = "apps/v1", "Deployment"
	bare, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[lastApplied] = string(bare)
	modified, _ := json.Marshal(m)
	live := &appsv1.Deployment{}
	err = c.Get(ctx(t), client.ObjectKeyFromObject(m), live)
	if apierrors.IsNotFound(err) {
		if err := c.Create(ctx(t), m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err != nil {
		t.Fatal(err)
	}
	current, _ := json.Marshal(live)
	meta, err := strategicpatch.NewPatchMetaFromStruct(appsv1.Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch([]byte(live.Annotations[lastApplied]), modified, current, meta, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Patch(ctx(t), live, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		t.Fatalf("apply patch %s: %v", patch, err)
	}
	return live
}

// serverSideApply is kubectl apply --server-side.
func serverSideApply(t *testing.T, manifest *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	c, _ := kube(t)
	m := manifest.DeepCopy()
	m.APIVersion, m.Kind = "apps/v1", "Deployment"
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := &appsv1.Deployment{}
	out.Namespace, out.Name = m.Namespace, m.Name
	if err := c.Patch(ctx(t), out, client.RawPatch(types.ApplyPatchType, b), client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
		t.Fatalf("server-side apply: %v", err)
	}
	return out
}

func live(t *testing.T, d *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	c, _ := kube(t)
	var got appsv1.Deployment
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(d), &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

func wantStored(t *testing.T, d *appsv1.Deployment, want string) {
	t.Helper()
	if got := stored(t, d); got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
}

func TestSetImageToAnUnpinnedImageThenRestartKeepsIt(t *testing.T) {
	t.Parallel()
	repo := uniq("web")
	digest := push(t, s.plain, repo+":1")
	app := s.plain.Host + "/" + repo + ":1"
	d := clientSideApply(t, deploy(namespace(t, true), nil, app))
	wantStored(t, d, app+"@"+digest)

	setImage(t, d, "c0", "quay.io/other/thing:2") // a registry the config does not cover
	wantStored(t, d, "quay.io/other/thing:2")
	rolloutRestart(t, d)
	wantStored(t, d, "quay.io/other/thing:2")
}

func TestSetImageWhileTheRegistryFailsThenRestartPinsTheNewImage(t *testing.T) {
	t.Parallel()
	holdFlaky(t)
	app := "ignore/" + uniq("app")
	api := "ignore/" + uniq("api")
	push(t, s.flaky, app+":1")
	apiDigest := push(t, s.flaky, api+":1.5.0")
	d := clientSideApply(t, deploy(namespace(t, true), nil, s.flaky.Host+"/"+app+":1"))

	s.flaky.Stop()
	setImage(t, d, "c0", s.flaky.Host+"/"+api+":1.5.0")
	if err := s.flaky.Start(); err != nil {
		t.Fatal(err)
	}
	wantStored(t, d, s.flaky.Host+"/"+api+":1.5.0")
	rolloutRestart(t, d)
	wantStored(t, d, s.flaky.Host+"/"+api+":1.5.0@"+apiDigest)
}

func TestSetImageToAWrittenDigestThenReApplyingTheManifestResolvesTheManifest(t *testing.T) {
	t.Parallel()
	repo, other := uniq("app"), uniq("api")
	digest := push(t, s.plain, repo+":1")
	otherDigest := push(t, s.plain, other+":1.5.0")
	app := s.plain.Host + "/" + repo + ":1"
	manifest := deploy(namespace(t, true), nil, app)
	d := clientSideApply(t, manifest)

	setImage(t, d, "c0", s.plain.Host+"/"+other+":1.5.0@"+otherDigest)
	wantStored(t, d, s.plain.Host+"/"+other+":1.5.0@"+otherDigest)
	clientSideApply(t, manifest)
	wantStored(t, d, app+"@"+digest)
}

func TestARestartPinsAnImageLeftUnpinnedAtCreate(t *testing.T) {
	t.Parallel()
	holdFlaky(t)
	repo := "ignore/" + uniq("app")
	digest := push(t, s.flaky, repo+":1")
	image := s.flaky.Host + "/" + repo + ":1"
	s.flaky.Stop()
	d := clientSideApply(t, deploy(namespace(t, true), nil, image))
	if err := s.flaky.Start(); err != nil {
		t.Fatal(err)
	}
	wantStored(t, d, image)
	rolloutRestart(t, d)
	wantStored(t, d, image+"@"+digest)
}

func TestAReApplyThatAddsSkipKeepsTheImageAsWritten(t *testing.T) {
	t.Parallel()
	for _, apply := range []struct {
		name string
		fn   func(*testing.T, *appsv1.Deployment) *appsv1.Deployment
	}{{"client-side", clientSideApply}, {"server-side", serverSideApply}} {
		t.Run(apply.name, func(t *testing.T) {
			t.Parallel()
			repo := uniq("app")
			digest := push(t, s.plain, repo+":1")
			image := s.plain.Host + "/" + repo + ":1"
			manifest := deploy(namespace(t, true), nil, image)
			d := apply.fn(t, manifest)
			wantStored(t, d, image+"@"+digest)
			push(t, s.plain, repo+":1") // the tag moves: a re-apply must not follow it
			waitOutCacheTTL()
			apply.fn(t, manifest)
			wantStored(t, d, image+"@"+digest)

			manifest.Annotations = map[string]string{"image-pin.io/strategy.c0": "skip"}
			apply.fn(t, manifest)
			wantStored(t, d, image)
		})
	}
}

func TestRollingBackAndForthRunsWhatEachRevisionAskedFor(t *testing.T) {
	t.Parallel()
	repo, other := uniq("app"), uniq("api")
	digest := push(t, s.plain, repo+":1")
	otherDigest := push(t, s.plain, other+":2")
	app, api := s.plain.Host+"/"+repo+":1", s.plain.Host+"/"+other+":2"
	manifest := deploy(namespace(t, true), nil, app)
	d := serverSideApply(t, manifest)
	rev1 := live(t, d)
	wantStored(t, d, app+"@"+digest)

	setImage(t, d, "c0", "quay.io/other/thing:2")
	rev2 := live(t, d)
	setImage(t, d, "c0", api)
	wantStored(t, d, api+"@"+otherDigest)

	rolloutUndo(t, d, rev2) // back to the unconfigured image
	wantStored(t, d, "quay.io/other/thing:2")
	rolloutRestart(t, d)
	wantStored(t, d, "quay.io/other/thing:2")

	rolloutUndo(t, d, rev1) // back to the first pin
	wantStored(t, d, app+"@"+digest)
	moved := push(t, s.plain, repo+":1")
	waitOutCacheTTL()
	serverSideApply(t, manifest) // the same manifest: no rollout
	wantStored(t, d, app+"@"+digest)
	rolloutRestart(t, d) // a restart follows the moved tag of what the manifest says
	wantStored(t, d, app+"@"+moved)
}

// optIn labels an existing namespace image-pin.io/enabled=true, as an admin
// does after workloads already run there.
func optIn(t *testing.T, ns string) {
	t.Helper()
	c, _ := kube(t)
	var n corev1.Namespace
	if err := c.Get(ctx(t), client.ObjectKey{Name: ns}, &n); err != nil {
		t.Fatal(err)
	}
	n.Labels = map[string]string{"image-pin.io/enabled": "true"}
	if err := c.Update(ctx(t), &n); err != nil {
		t.Fatal(err)
	}
	awaitServed(t, ns)
}

func TestPodsOfAnOptedOutWorkloadRunWhatItsTemplateSays(t *testing.T) {
	t.Parallel()
	repo := uniq("app")
	push(t, s.plain, repo+":1")
	image := s.plain.Host + "/" + repo + ":1"
	ns := namespace(t, true)
	c, _ := kube(t)
	d := deploy(ns, map[string]string{"image-pin.io/strategy.c0": "skip"}, image)
	if err := c.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	wantStored(t, d, image)
	// What the Deployment controller creates: a ReplicaSet it owns, and Pods
	// the ReplicaSet owns.
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-5d8f",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
	if err := c.Create(ctx(t), rs); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "web-5d8f-", Labels: rs.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr(true)}}},
			Spec: *rs.Spec.Template.Spec.DeepCopy()}
		// An injected sidecar, in the Pod only.
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: image})
		if err := c.Create(ctx(t), pod); err != nil {
			t.Fatal(err)
		}
		for _, ctr := range pod.Spec.Containers {
			if ctr.Image != image {
				t.Errorf("pod %s container %s runs %q, want %q as the template says", pod.Name, ctr.Name, ctr.Image, image)
			}
		}
	}
}

func TestAnExistingWorkloadsTemplateIsNotChangedOnItsNextUpdate(t *testing.T) {
	t.Parallel()
	repo := uniq("app")
	push(t, s.plain, repo+":1")
	image := s.plain.Host + "/" + repo + ":1"
	ns := namespace(t, false) // created before the namespace opted in
	c, _ := kube(t)
	d := deploy(ns, nil, image)
	if err := c.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	before := d.Spec.Template.DeepCopy()
	optIn(t, ns)
	// The deployment controller writes the object too: retry on conflict.
	updateLatest(t, c, d, func() { d.Labels = map[string]string{"team": "a"} })
	got := live(t, d)
	if !equality.Semantic.DeepEqual(&got.Spec.Template, before) {
		t.Errorf("the template changed on an unrelated update:\n got %+v\nwant %+v", got.Spec.Template, before)
	}
	// Only the record is added (the API server bumps a Deployment's
	// generation for annotations too, which starts no rollout).
	if got.Annotations["image-pin.io/original-images"] == "" {
		t.Error("no original-images record was written")
	}
}

func TestAFinalizerComesOffAnObjectWithAMalformedAnnotation(t *testing.T) {
	t.Parallel()
	ns := namespace(t, false)
	c, _ := kube(t)
	d := deploy(ns, map[string]string{"image-pin.io/strategy": "newest"}, s.plain.Host+"/x:1")
	d.Finalizers = []string{"example.com/cleanup"}
	if err := c.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	optIn(t, ns)
	if err := c.Delete(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	rawPatch(t, d, types.JSONPatchType, []map[string]any{{"op": "remove", "path": "/metadata/finalizers"}})
	err := c.Get(ctx(t), client.ObjectKeyFromObject(d), &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the object is still there (%v)", err)
	}
}
