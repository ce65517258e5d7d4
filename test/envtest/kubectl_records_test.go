package envtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// Issue 11's defects 1, 3 and 4 as a user meets them: the real kubectl
// against the real deployment and replicaset controllers. After each step
// the Deployment, every ReplicaSet and every Pod must run exactly what the
// user last asked for; records_test.go holds the same sequences as the
// UPDATE shapes kubectl sends, these prove kubectl really sends them.

// settledOn says what is wrong with r for a finished rollout of image
// with replicas Pods, where sets lists the image of every ReplicaSet the
// controllers should have made so far (the current one included, in any
// order), or "" when nothing is. Unlike settled it does not ask for pins:
// an image the webhook must leave alone is checked just as strictly.
func (r rollout) settledOn(image string, sets []string, replicas int32) string {
	switch {
	case r.image != image:
		return fmt.Sprintf("the Deployment's template holds %s, want %s", r.image, image)
	case r.observed != r.generation:
		return "the deployment controller has not seen the last change yet"
	}
	got := make([]string, 0, len(r.sets))
	for _, rs := range r.sets {
		got = append(got, rs.image)
	}
	want := append([]string(nil), sets...)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		return fmt.Sprintf("the ReplicaSets hold %q, want %q", got, want)
	}
	// The current ReplicaSet is the one that wants Pods: two may hold the
	// same image (a restart only changes the template's restartedAt).
	current := ""
	for name, rs := range r.sets {
		switch {
		case rs.replicas == 0:
		case current != "":
			return fmt.Sprintf("ReplicaSets %s and %s both want Pods", current, name)
		case rs.replicas != replicas:
			return fmt.Sprintf("ReplicaSet %s wants %d replicas, not %d", name, rs.replicas, replicas)
		case rs.image != image:
			return fmt.Sprintf("the ReplicaSet that wants Pods, %s, holds %s, want %s", name, rs.image, image)
		default:
			current = name
		}
	}
	if current == "" {
		return "no ReplicaSet wants Pods"
	}
	if int32(len(r.pods)) != replicas {
		return fmt.Sprintf("%d Pods, want %d", len(r.pods), replicas)
	}
	for name, p := range r.pods {
		if p.owner != current || p.image != image {
			return fmt.Sprintf("Pod %s of ReplicaSet %s holds %s, want %s of %s", name, p.owner, p.image, image, current)
		}
	}
	return ""
}

// waitSettledOn waits until the controllers have finished the rollout of
// image (see settledOn), then checks it stays so for a moment: a Pod
// pinned on its own, or a ReplicaSet too many, would show up late.
func waitSettledOn(t *testing.T, ns, image string, sets []string, replicas int32) rollout {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second) // the bound only ends a broken run
	for {
		r := observe(t, ns)
		problem := r.settledOn(image, sets, replicas)
		if problem == "" {
			time.Sleep(time.Second)
			again := observe(t, ns)
			if again.String() != r.String() {
				t.Fatalf("the rollout changed after it settled:\nbefore:\n%s\nafter:\n%s", r, again)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: %s\n%s", problem, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// answer503 replaces registry r by a server on the same address that
// answers 503 Service Unavailable to every request, as a registry does
// during maintenance. The returned function puts r back and returns how
// many requests were refused.
func answer503(t *testing.T, r *cluster.Registry) (restore func() int64) {
	t.Helper()
	r.Stop()
	var l net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if l, err = net.Listen("tcp", r.Host); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		_ = r.Start()
		t.Fatalf("listening on %s in the registry's place: %v", r.Host, err)
	}
	var refused atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		refused.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}`))
	}), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	restored := false
	restore = func() int64 {
		t.Helper()
		if restored {
			return refused.Load()
		}
		restored = true
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("the 503 server: %v", err)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		return refused.Load()
	}
	t.Cleanup(func() { restore() })
	return restore
}

// annotated is m's file with annotations on the Deployment itself.
func (m manifest) annotated(t *testing.T, ann map[string]string) string {
	t.Helper()
	path := m.file(t)
	if len(ann) == 0 {
		return path
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	lines.WriteString("  annotations:\n")
	for _, k := range sortedKeys(ann) {
		fmt.Fprintf(&lines, "    %s: %q\n", k, ann[k])
	}
	const at = "  name: web\n"
	doc := strings.Replace(string(b), at, at+lines.String(), 1)
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKubectlSetImageToAnUnconfiguredRegistryThenRestartKeepsTheUsersImage(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	name := uniq("app")
	pinned := s.plain.Host + "/" + name + ":1@" + push(t, s.plain, name+":1")
	kubectlOK(t, "apply", "-f", manifest{Namespace: ns, Image: s.plain.Host + "/" + name + ":1"}.file(t))
	waitSettledOn(t, ns, pinned, []string{pinned}, 2)

	// A host:port no registry entry's prefix covers: the webhook must not
	// pin it, and nothing may reach it.
	other := "127.0.0.1:1/other/thing:2"
	kubectlOK(t, "-n", ns, "set", "image", "deployment/web", "app="+other)
	waitSettledOn(t, ns, other, []string{pinned, other}, 2)

	kubectlOK(t, "-n", ns, "rollout", "restart", "deployment/web")
	waitSettledOn(t, ns, other, []string{pinned, other, other}, 2)
}

func TestKubectlSetImageWhileTheRegistryAnswers503ThenRestartPinsTheNewImage(t *testing.T) {
	t.Parallel()
	holdFlaky(t)
	ns := namespace(t, true)
	app, api := "ignore/"+uniq("app"), "ignore/"+uniq("api")
	appPinned := s.flaky.Host + "/" + app + ":1@" + push(t, s.flaky, app+":1")
	apiImage := s.flaky.Host + "/" + api + ":1.5.0"
	apiPinned := apiImage + "@" + push(t, s.flaky, api+":1.5.0")
	kubectlOK(t, "apply", "-f", manifest{Namespace: ns, Image: s.flaky.Host + "/" + app + ":1"}.file(t))
	waitSettledOn(t, ns, appPinned, []string{appPinned}, 2)

	restore := answer503(t, s.flaky)
	kubectlOK(t, "-n", ns, "set", "image", "deployment/web", "app="+apiImage)
	// Back before the controllers may have made the new ReplicaSet and its
	// Pods: they run what the template says, not a pin of their own.
	if refused := restore(); refused == 0 {
		t.Fatal("the webhook never asked the registry while it answered 503")
	}
	waitSettledOn(t, ns, apiImage, []string{appPinned, apiImage}, 2)

	waitOutCacheTTL()
	kubectlOK(t, "-n", ns, "rollout", "restart", "deployment/web")
	waitSettledOn(t, ns, apiPinned, []string{appPinned, apiImage, apiPinned}, 2)
}

func TestKubectlSetImageToAWrittenDigestThenApplyingTheManifestRunsTheManifestsRepository(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	app, api := uniq("app"), uniq("api")
	appPinned := s.plain.Host + "/" + app + ":1@" + push(t, s.plain, app+":1")
	apiWritten := s.plain.Host + "/" + api + ":1.5.0@" + push(t, s.plain, api+":1.5.0")
	git := manifest{Namespace: ns, Image: s.plain.Host + "/" + app + ":1"}
	kubectlOK(t, "apply", "-f", git.file(t))
	waitSettledOn(t, ns, appPinned, []string{appPinned}, 2)

	kubectlOK(t, "-n", ns, "set", "image", "deployment/web", "app="+apiWritten)
	waitSettledOn(t, ns, apiWritten, []string{appPinned, apiWritten}, 2)

	// The manifest's template is the first revision's again: the deployment
	// controller scales its ReplicaSet back up rather than making a third.
	kubectlOK(t, "apply", "-f", git.file(t))
	waitSettledOn(t, ns, appPinned, []string{appPinned, apiWritten}, 2)

	t.Run("and server-side", func(t *testing.T) {
		kubectlOK(t, "-n", ns, "set", "image", "deployment/web", "app="+apiWritten)
		waitSettledOn(t, ns, apiWritten, []string{appPinned, apiWritten}, 2)
		kubectlOK(t, "apply", "--server-side", "--force-conflicts", "-f", git.file(t))
		waitSettledOn(t, ns, appPinned, []string{appPinned, apiWritten}, 2)
	})
}

func TestPodsTheControllersMakeForAnOptedOutDeploymentKeepTheImageAsWritten(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		labels map[string]string
		ann    map[string]string
	}{
		{"labelled image-pin.io/skip=true", map[string]string{"image-pin.io/skip": "true"}, nil},
		{"annotated image-pin.io/strategy.app: skip", nil, map[string]string{"image-pin.io/strategy.app": "skip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := namespace(t, true)
			name := uniq("app")
			push(t, s.plain, name+":1")
			image := s.plain.Host + "/" + name + ":1"
			m := manifest{Namespace: ns, Image: image, Labels: tc.labels}
			kubectlOK(t, "apply", "-f", m.annotated(t, tc.ann))
			waitSettledOn(t, ns, image, []string{image}, 2)

			// The tag moves and the Pods are replaced: still as written.
			push(t, s.plain, name+":1")
			waitOutCacheTTL()
			kubectlOK(t, "-n", ns, "rollout", "restart", "deployment/web")
			waitSettledOn(t, ns, image, []string{image, image}, 2)
			kubectlOK(t, "-n", ns, "scale", "deployment/web", "--replicas=3")
			waitSettledOn(t, ns, image, []string{image, image}, 3)
		})
	}
}

func TestKubectlRolloutRestartPinsADeploymentCreatedBeforeItsNamespaceOptedIn(t *testing.T) {
	t.Parallel()
	ns := namespace(t, false)
	name := uniq("app")
	image := s.plain.Host + "/" + name + ":1"
	pinned := image + "@" + push(t, s.plain, name+":1")
	git := manifest{Namespace: ns, Image: image}
	kubectlOK(t, "apply", "-f", git.file(t))
	waitSettledOn(t, ns, image, []string{image}, 2)

	optIn(t, ns)
	// Opting in changes nothing running: a re-apply and a scale start no rollout.
	kubectlOK(t, "apply", "-f", git.file(t))
	kubectlOK(t, "-n", ns, "scale", "deployment/web", "--replicas=3")
	waitSettledOn(t, ns, image, []string{image}, 3)

	kubectlOK(t, "-n", ns, "rollout", "restart", "deployment/web")
	waitSettledOn(t, ns, pinned, []string{image, pinned}, 3)
}

func TestKubectlRolloutUndoToAnUnconfiguredImageThenRestartKeepsIt(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	app, api := uniq("app"), uniq("api")
	appPinned := s.plain.Host + "/" + app + ":1@" + push(t, s.plain, app+":1")
	apiPinned := s.plain.Host + "/" + api + ":2@" + push(t, s.plain, api+":2")
	git := manifest{Namespace: ns, Image: s.plain.Host + "/" + app + ":1"}
	kubectlOK(t, "apply", "-f", git.file(t))
	waitSettledOn(t, ns, appPinned, []string{appPinned}, 2)

	other := "127.0.0.1:1/other/thing:2"
	kubectlOK(t, "-n", ns, "set", "image", "deployment/web", "app="+other)
	waitSettledOn(t, ns, other, []string{appPinned, other}, 2)
	kubectlOK(t, "-n", ns, "set", "image", "deployment/web", "app="+s.plain.Host+"/"+api+":2")
	waitSettledOn(t, ns, apiPinned, []string{appPinned, other, apiPinned}, 2)

	kubectlOK(t, "-n", ns, "rollout", "undo", "deployment/web")
	waitSettledOn(t, ns, other, []string{appPinned, other, apiPinned}, 2)
	kubectlOK(t, "-n", ns, "rollout", "restart", "deployment/web")
	waitSettledOn(t, ns, other, []string{appPinned, other, apiPinned, other}, 2)

	kubectlOK(t, "-n", ns, "rollout", "undo", "deployment/web", "--to-revision=1")
	waitSettledOn(t, ns, appPinned, []string{appPinned, other, apiPinned, other}, 2)
	// The manifest says what revision 1 said: no rollout.
	kubectlOK(t, "apply", "-f", git.file(t))
	waitSettledOn(t, ns, appPinned, []string{appPinned, other, apiPinned, other}, 2)
}
