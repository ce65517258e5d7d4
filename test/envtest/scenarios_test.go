package envtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// warnings collects the admission warnings the API server passes on.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, msg)
	w.mu.Unlock()
}

func (w *warnings) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, "\n")
}

func (w *warnings) reset() {
	w.mu.Lock()
	w.msgs = nil
	w.mu.Unlock()
}

// kube is a client of the API server whose admission warnings land in
// the returned warnings. Every one shares the suite's connections and what
// it learned of the API's kinds (each client would otherwise ask the API
// server again, at every poll of every test).
func kube(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	hc, mapper, err := s.shared()
	if err != nil {
		t.Fatal(err)
	}
	w := &warnings{}
	cfg := rest.CopyConfig(s.restCfg)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{HTTPClient: hc, Mapper: mapper})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// namespace makes a namespace of the test's own, opted in or not.
func namespace(t *testing.T, optIn bool) string {
	t.Helper()
	base := nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	name := strings.Trim(base, "-") + fmt.Sprintf("-%04d", rand.IntN(10000))
	labels := map[string]string{}
	if optIn {
		labels["image-pin.io/enabled"] = "true"
	}
	c, _ := kube(t)
	if err := c.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func push(t *testing.T, r *cluster.Registry, repoTag string) string {
	t.Helper()
	d, err := r.Push(repoTag)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// uniq gives a repository name of the test's own, so tests never share a tag.
func uniq(base string) string {
	return fmt.Sprintf("%s-%d", base, rand.IntN(1_000_000))
}

func deploy(ns string, ann map[string]string, images ...string) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Annotations: ann},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}},
		},
	}
	for i, img := range images {
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return d
}

func stored(t *testing.T, d *appsv1.Deployment) string {
	t.Helper()
	c, _ := kube(t)
	var got appsv1.Deployment
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(d), &got); err != nil {
		t.Fatal(err)
	}
	return got.Spec.Template.Spec.Containers[0].Image
}

func TestADeploymentOfLatestIsPinned(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	repo := uniq("web")
	digest := push(t, s.plain, repo+":latest")
	c, _ := kube(t)
	d := deploy(ns, nil, s.plain.Host+"/"+repo)
	if err := c.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	want := s.plain.Host + "/" + repo + ":latest@" + digest
	if got := stored(t, d); got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
	if got := d.Annotations["image-pin.io/original-images"]; got != fmt.Sprintf(`{"c0":"%s/%s"}`, s.plain.Host, repo) {
		t.Errorf("original-images = %q", got)
	}
}

func TestASemverConstraintAnnotationPicksTheNewestMatch(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	repo := uniq("api")
	digests := map[string]string{}
	for _, tag := range []string{"1.3.9", "1.4.0", "v1.4.7", "1.4.8-rc1", "1.5.0", "latest"} {
		digests[tag] = push(t, s.plain, repo+":"+tag)
	}
	c, _ := kube(t)
	d := deploy(ns, map[string]string{"image-pin.io/constraint": "~1.4"}, s.plain.Host+"/"+repo+":1.4.0")
	if err := c.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	if got, want := stored(t, d), s.plain.Host+"/"+repo+":v1.4.7@"+digests["v1.4.7"]; got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
}

func TestAMultiArchImageIsPinnedToItsIndexDigest(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	repo := uniq("multi")
	digest, err := s.plain.PushIndex(repo + ":1")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := kube(t)
	d := deploy(ns, nil, s.plain.Host+"/"+repo+":1")
	if err := c.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	if got, want := stored(t, d), s.plain.Host+"/"+repo+":1@"+digest; got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
}

func TestAPodIsPinned(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	repo := uniq("pod")
	digest := push(t, s.plain, repo+":2")
	c, _ := kube(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: s.plain.Host + "/" + repo + ":2"}}}}
	if err := c.Create(ctx(t), pod); err != nil {
		t.Fatal(err)
	}
	if want := s.plain.Host + "/" + repo + ":2@" + digest; pod.Spec.Containers[0].Image != want {
		t.Fatalf("stored %q, want %q", pod.Spec.Containers[0].Image, want)
	}
}

func TestACronJobWithAnInitContainerIsPinned(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	repo := uniq("cron")
	main, initD := push(t, s.plain, repo+":main"), push(t, s.plain, repo+":init")
	c, _ := kube(t)
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cj"}, Spec: batchv1.CronJobSpec{
		Schedule: "*/5 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy:  corev1.RestartPolicyNever,
			InitContainers: []corev1.Container{{Name: "init", Image: s.plain.Host + "/" + repo + ":init"}},
			Containers:     []corev1.Container{{Name: "main", Image: s.plain.Host + "/" + repo + ":main"}},
		}}}},
	}}
	if err := c.Create(ctx(t), cj); err != nil {
		t.Fatal(err)
	}
	spec := cj.Spec.JobTemplate.Spec.Template.Spec
	if got := spec.InitContainers[0].Image; !strings.HasSuffix(got, ":init@"+initD) {
		t.Errorf("init container stored as %q", got)
	}
	if got := spec.Containers[0].Image; !strings.HasSuffix(got, ":main@"+main) {
		t.Errorf("container stored as %q", got)
	}
}

func TestEveryOtherPodCarryingKindIsPinned(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	repo := uniq("kinds")
	digest := push(t, s.plain, repo+":1")
	image := s.plain.Host + "/" + repo + ":1"
	want := image + "@" + digest
	tmpl := func() corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "k"}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{Name: "app", Image: image}}}}
	}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "k"}}
	jobTmpl := tmpl()
	jobTmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	jobTmpl.Labels = nil
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sts"}, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl()}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ds"}, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl()}}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "job"}, Spec: batchv1.JobSpec{Template: jobTmpl}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rs"}, Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: tmpl()}}
	rcTmpl := tmpl()
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rc"}, Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "k"}, Template: &rcTmpl}}
	pt := &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pt"}, Template: tmpl()}
	tests := []struct {
		name  string
		obj   client.Object
		image func() string
	}{
		{"StatefulSet", sts, func() string { return sts.Spec.Template.Spec.Containers[0].Image }},
		{"DaemonSet", ds, func() string { return ds.Spec.Template.Spec.Containers[0].Image }},
		{"Job", job, func() string { return job.Spec.Template.Spec.Containers[0].Image }},
		{"ReplicaSet", rs, func() string { return rs.Spec.Template.Spec.Containers[0].Image }},
		{"ReplicationController", rc, func() string { return rc.Spec.Template.Spec.Containers[0].Image }},
		{"PodTemplate", pt, func() string { return pt.Template.Spec.Containers[0].Image }},
	}
	c, _ := kube(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Create(ctx(t), tc.obj); err != nil {
				t.Fatal(err)
			}
			if got := tc.image(); got != want {
				t.Errorf("stored %q, want %q", got, want)
			}
		})
	}
}

func TestAKubectlDebugEphemeralContainerIsPinned(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	repo := uniq("debug")
	push(t, s.plain, repo+":app")
	dbg := push(t, s.plain, repo+":debug")
	c, _ := kube(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: s.plain.Host + "/" + repo + ":app"}}}}
	if err := c.Create(ctx(t), pod); err != nil {
		t.Fatal(err)
	}
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debugger", Image: s.plain.Host + "/" + repo + ":debug", TerminationMessagePolicy: corev1.TerminationMessageReadFile, ImagePullPolicy: corev1.PullIfNotPresent,
	}, TargetContainerName: "app"}}
	if err := c.SubResource("ephemeralcontainers").Update(ctx(t), pod); err != nil {
		t.Fatal(err)
	}
	if got, want := pod.Spec.EphemeralContainers[0].Image, s.plain.Host+"/"+repo+":debug@"+dbg; got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
}

func TestObjectsTheWebhookMustLeaveAlone(t *testing.T) {
	t.Parallel()
	repo := uniq("alone")
	digest := push(t, s.plain, repo+":1")
	image := s.plain.Host + "/" + repo + ":1"
	skipped := deploy(namespace(t, true), nil, image)
	skipped.Labels = map[string]string{"image-pin.io/skip": "true"}
	owner := true
	ownedNS := namespace(t, true)
	owned := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ownedNS, Name: "web-abc",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "0b9a7d2e-0000-4000-8000-000000000001", Controller: &owner}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}}}
	kubeSystem := deploy("kube-system", nil, image)
	kubeSystem.Name = uniq("web")
	own := deploy(ownNamespace, nil, image)
	own.Name = uniq("web")
	tests := []struct {
		name  string
		obj   client.Object
		image func() string
		want  string
	}{
		{"a namespace that did not opt in", deploy(namespace(t, false), nil, image), nil, image},
		{"an object labelled image-pin.io/skip=true", skipped, nil, image},
		{"an image of an unconfigured registry", deploy(namespace(t, true), nil, "quay.invalid/x/y:1"), nil, "quay.invalid/x/y:1"},
		{"an image that already carries a digest", deploy(namespace(t, true), nil, image+"@"+digest), nil, image + "@" + digest},
		{"kube-system", kubeSystem, nil, image},
		{"the webhook's own namespace, labelled", own, nil, image},
		{"a ReplicaSet owned by a Deployment", owned, func() string { return owned.Spec.Template.Spec.Containers[0].Image }, image},
	}
	c, _ := kube(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Create(ctx(t), tc.obj); err != nil {
				t.Fatal(err)
			}
			got := ""
			if tc.image != nil {
				got = tc.image()
			} else {
				got = tc.obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Image
			}
			if got != tc.want {
				t.Errorf("stored %q, want it left as %q", got, tc.want)
			}
		})
	}
}

func TestEveryCredentialSourceAuthenticates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		reg  *cluster.Registry
		path string
	}{
		{"secret: holds a GHCR-style user:token (TLS, htpasswd)", s.tlsReg, "secret"},
		{"pullsecret: holds a .dockerconfigjson (TLS, htpasswd)", s.tlsReg, "pullsecret"},
		{"env: names a variable (bearer tokens)", s.tokenReg, "env"},
		{"ext: runs an ECR-style login script (bearer tokens)", s.tokenReg, "ext"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := namespace(t, true)
			repo := tc.path + "/" + uniq("app")
			digest := push(t, tc.reg, repo+":1")
			c, w := kube(t)
			d := deploy(ns, nil, tc.reg.Host+"/"+repo+":1")
			if err := c.Create(ctx(t), d); err != nil {
				t.Fatal(err)
			}
			if got, want := stored(t, d), tc.reg.Host+"/"+repo+":1@"+digest; got != want {
				t.Fatalf("stored %q, want %q (warnings: %s)", got, want, w.all())
			}
		})
	}
}

func TestAnExtScriptRunsOncePerCredsExpireWindow(t *testing.T) {
	t.Parallel()
	optInNamed(t, "team-a")
	// A webhook and a script of the test's own: the suite's script also
	// runs for other tests, and a fresh process has no earlier window to
	// wait out. The window is long, so that three admissions fit in it on
	// any machine; the test waits it out once, beside the others.
	const window = 10 * time.Second
	dir := t.TempDir()
	runsFile, script := filepath.Join(dir, "runs"), filepath.Join(dir, "login.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\necho run >> %s\necho \"$E2E_EXT_USER:$E2E_EXT_PASS\"\n", runsFile)), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, fmt.Sprintf(`registries:
- name: ecr-style script
  api_url: http://%[1]s
  prefix: %[1]s/ext
  credentials: ext:%[2]s
  credsexpire: %[3]s
`, s.tokenReg.Host, script, window), cluster.WebhookOptions{Kubeconfig: s.kubecfg,
		Env: []string{"E2E_EXT_USER=" + regUser, "E2E_EXT_PASS=" + regPass}})
	runs := func() int {
		b, _ := os.ReadFile(runsFile)
		return strings.Count(string(b), "run")
	}
	var images []string
	for range 4 {
		repo := "ext/" + uniq("win")
		push(t, s.tokenReg, repo+":1")
		images = append(images, fmt.Sprintf("%s/%s:1", s.tokenReg.Host, repo))
	}
	admit := func(i int) {
		t.Helper()
		if r, raw := p.post(t, review("team-a", "Pod", "CREATE", images[i])); !r.Allowed || !strings.Contains(string(r.Patch), "@sha256:") {
			t.Fatalf("admission %d was not pinned: %s", i, raw)
		}
	}
	admit(0)
	// The script ran during the first admission: its credentials last
	// until at most a window after it returned.
	expires := time.Now().Add(window)
	admit(1)
	admit(2)
	if n := runs(); n != 1 {
		t.Fatalf("the script ran %d times for three admissions within credsexpire, want 1", n)
	}
	time.Sleep(time.Until(expires) + 100*time.Millisecond)
	admit(3)
	if n := runs(); n != 2 {
		t.Fatalf("after the window the script ran %d times in all, want 2", n)
	}
	if strings.Contains(p.out.String(), regPass) {
		t.Error("the webhook printed the credential the script gave")
	}
}

func TestWrongCredentialsFollowOnError(t *testing.T) {
	t.Parallel()
	t.Run("ignore admits the image unchanged with a warning", func(t *testing.T) {
		t.Parallel()
		image := s.tokenReg.Host + "/wrong-ignore/" + uniq("app") + ":1"
		c, w := kube(t)
		d := deploy(namespace(t, true), nil, image)
		if err := c.Create(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, d); got != image {
			t.Errorf("stored %q, want %q", got, image)
		}
		if !strings.Contains(w.all(), `container "c0"`) || !strings.Contains(w.all(), image) {
			t.Errorf("warnings = %q", w.all())
		}
	})
	t.Run("fail denies with the container, image and cause", func(t *testing.T) {
		t.Parallel()
		image := s.tokenReg.Host + "/wrong-fail/" + uniq("app") + ":1"
		c, _ := kube(t)
		err := c.Create(ctx(t), deploy(namespace(t, true), nil, image))
		if err == nil || !strings.Contains(err.Error(), `container "c0"`) || !strings.Contains(err.Error(), image) {
			t.Fatalf("err = %v, want a denial naming the container and image", err)
		}
		if strings.Contains(err.Error(), wrongPass) {
			t.Fatal("the denial shows the password")
		}
	})
}

func TestARegistryStoppedMidTest(t *testing.T) {
	t.Parallel()
	holdFlaky(t)
	known := "ignore/" + uniq("app")
	knownFail := "fail/" + uniq("app")
	digest := push(t, s.flaky, known+":1")
	push(t, s.flaky, knownFail+":1")
	c, w := kube(t)
	d := deploy(namespace(t, true), nil, s.flaky.Host+"/"+known+":1")
	if err := c.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	s.flaky.Stop()
	t.Cleanup(func() {
		if err := s.flaky.Start(); err != nil {
			t.Error(err)
		}
	})
	waitOutCacheTTL() // only the last known digest is left

	t.Run("ignore pins to the last known digest with a warning", func(t *testing.T) {
		w.reset()
		d := deploy(namespace(t, true), nil, s.flaky.Host+"/"+known+":1")
		if err := c.Create(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		if got, want := stored(t, d), s.flaky.Host+"/"+known+":1@"+digest; got != want {
			t.Errorf("stored %q, want %q", got, want)
		}
		if !strings.Contains(w.all(), "last known digest") {
			t.Errorf("warnings = %q", w.all())
		}
	})
	t.Run("ignore leaves an image never resolved unchanged with a warning", func(t *testing.T) {
		w.reset()
		image := s.flaky.Host + "/ignore/" + uniq("never") + ":1"
		d := deploy(namespace(t, true), nil, image)
		if err := c.Create(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, d); got != image {
			t.Errorf("stored %q, want %q", got, image)
		}
		if !strings.Contains(w.all(), "left as it is") {
			t.Errorf("warnings = %q", w.all())
		}
	})
	t.Run("fail denies inside the deadline", func(t *testing.T) {
		start := time.Now()
		err := c.Create(ctx(t), deploy(namespace(t, true), nil, s.flaky.Host+"/"+knownFail+":2"))
		if err == nil {
			t.Fatal("admitted")
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("answered after %s, past timeoutSeconds", took)
		}
	})
}

func TestUpdatesNeverStartARolloutUnlessAsked(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	repo := uniq("upd")
	first := push(t, s.plain, repo+":stable")
	image := s.plain.Host + "/" + repo + ":stable"
	pinned := image + "@" + first
	c, _ := kube(t)
	d := deploy(ns, nil, image)
	if err := c.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	moved := push(t, s.plain, repo+":stable") // the tag moves
	waitOutCacheTTL()

	t.Run("an unrelated update keeps the pin while the tag moved", func(t *testing.T) {
		updateLatest(t, c, d, func() {
			d.Spec.Replicas = ptr(int32(5))
			d.Labels = map[string]string{"team": "a"}
		})
		if got := stored(t, d); got != pinned {
			t.Fatalf("stored %q, want %q", got, pinned)
		}
	})
	t.Run("a re-apply of the original manifest keeps the pin", func(t *testing.T) {
		updateLatest(t, c, d, func() {
			d.Spec.Template.Spec.Containers[0].Image = image
			delete(d.Annotations, "image-pin.io/original-images")
		})
		if got := stored(t, d); got != pinned {
			t.Fatalf("stored %q, want %q", got, pinned)
		}
		if d.Annotations["image-pin.io/original-images"] == "" {
			t.Error("the dropped original-images annotation was not carried over")
		}
	})
	t.Run("a rollout restart re-pins to the moved tag", func(t *testing.T) {
		updateLatest(t, c, d, func() {
			d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().UTC().Format(time.RFC3339)}
		})
		if got, want := stored(t, d), image+"@"+moved; got != want {
			t.Fatalf("stored %q, want %q", got, want)
		}
	})
	t.Run("a rollout undo is left exactly as asked", func(t *testing.T) {
		updateLatest(t, c, d, func() {
			d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}
			d.Spec.Template.Spec.Containers[0].Image = pinned
		})
		if got := stored(t, d); got != pinned {
			t.Fatalf("stored %q, want %q", got, pinned)
		}
	})
}

// updateLatest applies change to the latest d and updates it, starting
// again on a conflict: the deployment controller writes d's status and
// revision annotation between the test's own writes.
func updateLatest(t *testing.T, c client.Client, d *appsv1.Deployment, change func()) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx(t), client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		change()
		return c.Update(ctx(t), d)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Not parallel: it rewrites the suite's config, and a reload gives every
// entry fresh clients. It puts the config back before the parallel tests
// start.
func TestTheConfigFileChangedWhileRunning(t *testing.T) {
	// The rule added on reload names PLAIN/reload: use that repository.
	digests := map[string]string{}
	for _, tag := range []string{"1.0.0", "1.2.0", "latest"} {
		digests[tag] = push(t, s.plain, "reload:"+tag)
	}
	c, _ := kube(t)
	before := deploy(namespace(t, true), nil, s.plain.Host+"/reload")
	if err := c.Create(ctx(t), before); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, before); !strings.HasSuffix(got, ":latest@"+digests["latest"]) {
		t.Fatalf("before the change: %q", got)
	}
	s.mu.Lock()
	t.Cleanup(s.mu.Unlock)
	if err := s.writeConfig(true); err != nil {
		t.Fatal(err)
	}
	probeNS := namespace(t, true)
	t.Cleanup(func() {
		if err := s.writeConfig(false); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the suite's config is in force again", func() bool {
			got, err := dryRunPod(t, probeNS, s.plain.Host+"/reload")
			return err == nil && strings.HasSuffix(got, ":latest@"+digests["latest"])
		})
	})
	want := s.plain.Host + "/reload:1.2.0@" + digests["1.2.0"]
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		d := deploy(namespace(t, true), nil, s.plain.Host+"/reload")
		if err := c.Create(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, d); got == want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("the new rule never took effect: stored %q, want %q", got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
