package envtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/template"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// kubectl runs the suite's kubectl (built from the API server's own
// Kubernetes version) as a user would, and returns its stdout and exit code.
// A code other than 0 or 1 (kubectl diff's "differences found") fails the
// test with what kubectl printed.
func kubectl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubecfg, "KUBECTL_EXTERNAL_DIFF=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	if code > 1 {
		t.Fatalf("kubectl %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String(), code
}

// kubectlOK is kubectl that must succeed.
func kubectlOK(t *testing.T, args ...string) string {
	t.Helper()
	out, code := kubectl(t, args...)
	if code != 0 {
		t.Fatalf("kubectl %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// manifest is a Deployment as an app team keeps it in Git.
type manifest struct {
	Namespace, Image string
	Labels           map[string]string
}

// Two replicas, and a rolling update that may replace every Pod at once:
// without a kubelet no Pod ever becomes available, and the default
// (maxUnavailable 25%) would leave each rollout half done.
const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {{.Namespace}}
  labels:
    app: web
{{- range $k, $v := .Labels}}
    {{$k}}: {{printf "%q" $v}}
{{- end}}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 100%
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: {{.Image}}
`

// file writes m where kubectl -f can read it.
func (m manifest) file(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New("m").Parse(deploymentYAML)).Execute(&b, m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rollout is what a user sees of Deployment web: its template's image,
// and the ReplicaSets and Pods the controllers made for it.
type rollout struct {
	generation, observed int64
	image                string
	sets                 map[string]replicaSet // by name
	pods                 map[string]pod        // by name
}

type replicaSet struct {
	image    string
	replicas int32
}

type pod struct{ image, owner string }

func (r rollout) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deployment web (generation %d, observed %d): %s\n", r.generation, r.observed, r.image)
	for _, n := range sortedKeys(r.sets) {
		fmt.Fprintf(&b, "  replicaset %s (%d replicas): %s\n", n, r.sets[n].replicas, r.sets[n].image)
	}
	for _, n := range sortedKeys(r.pods) {
		fmt.Fprintf(&b, "  pod %s of %s: %s\n", n, r.pods[n].owner, r.pods[n].image)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func observe(t *testing.T, ns string) rollout {
	t.Helper()
	c, _ := kube(t)
	var d appsv1.Deployment
	if err := c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: "web"}, &d); err != nil {
		t.Fatal(err)
	}
	r := rollout{generation: d.Generation, observed: d.Status.ObservedGeneration, image: d.Spec.Template.Spec.Containers[0].Image,
		sets: map[string]replicaSet{}, pods: map[string]pod{}}
	var sets appsv1.ReplicaSetList
	if err := c.List(ctx(t), &sets, client.InNamespace(ns), client.MatchingLabels{"app": "web"}); err != nil {
		t.Fatal(err)
	}
	for _, rs := range sets.Items {
		r.sets[rs.Name] = replicaSet{image: rs.Spec.Template.Spec.Containers[0].Image, replicas: *rs.Spec.Replicas}
	}
	var pods corev1.PodList
	if err := c.List(ctx(t), &pods, client.InNamespace(ns), client.MatchingLabels{"app": "web"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		owner := ""
		if len(p.OwnerReferences) > 0 {
			owner = p.OwnerReferences[0].Name
		}
		r.pods[p.Name] = pod{image: p.Spec.Containers[0].Image, owner: owner}
	}
	return r
}

// settled says what is wrong with r for a finished rollout of image in
// sets ReplicaSets with replicas Pods, or "" when nothing is.
func (r rollout) settled(image string, sets int, replicas int32) string {
	switch {
	case r.image != image:
		return fmt.Sprintf("the Deployment's template holds %s, want %s", r.image, image)
	case r.observed != r.generation:
		return "the deployment controller has not seen the last change yet"
	case len(r.sets) != sets:
		return fmt.Sprintf("%d ReplicaSets, want %d", len(r.sets), sets)
	}
	current := 0
	for name, rs := range r.sets {
		switch {
		case !strings.Contains(rs.image, "@sha256:"):
			return fmt.Sprintf("ReplicaSet %s holds %s, not pinned", name, rs.image)
		case rs.image == image && rs.replicas != replicas:
			return fmt.Sprintf("the current ReplicaSet %s wants %d replicas, not %d", name, rs.replicas, replicas)
		case rs.image == image:
			current++
		case rs.replicas != 0:
			return fmt.Sprintf("the old ReplicaSet %s (%s) still wants %d replicas", name, rs.image, rs.replicas)
		}
	}
	if current != 1 {
		return fmt.Sprintf("%d ReplicaSets hold %s, want 1", current, image)
	}
	if int32(len(r.pods)) != replicas {
		return fmt.Sprintf("%d Pods, want %d", len(r.pods), replicas)
	}
	for name, p := range r.pods {
		if p.image != image || r.sets[p.owner].image != image {
			return fmt.Sprintf("Pod %s of ReplicaSet %s holds %s, want %s", name, p.owner, p.image, image)
		}
	}
	return ""
}

// waitSettled waits until the controllers have finished the rollout of
// image: sets ReplicaSets in all, replicas Pods, all carrying image.
func waitSettled(t *testing.T, ns, image string, sets int, replicas int32) rollout {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second) // the bound only ends a broken run
	for {
		r := observe(t, ns)
		problem := r.settled(image, sets, replicas)
		if problem == "" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: %s\n%s", problem, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestEverydayKubectlOnADeploymentWhoseTagMoves(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	name := uniq("kubectl")
	repo := s.plain.Host + "/" + name
	first := push(t, s.plain, name+":v1")
	pinned := repo + ":v1@" + first
	git := manifest{Namespace: ns, Image: repo + ":v1"}
	var moved, second string
	steps := []struct {
		name     string
		do       func(t *testing.T)
		image    func() string
		sets     int
		replicas int32
	}{
		{"kubectl apply pins the template, its ReplicaSet and its Pods alike", func(t *testing.T) {
			kubectlOK(t, "apply", "-f", git.file(t))
		}, func() string { return pinned }, 1, 2},
		{"kubectl scale starts no rollout", func(t *testing.T) {
			kubectlOK(t, "-n", ns, "scale", "deployment/web", "--replicas=3")
		}, func() string { return pinned }, 1, 3},
		{"a label change re-applied client-side starts no rollout", func(t *testing.T) {
			labelled := git
			labelled.Labels = map[string]string{"team": "a"}
			kubectlOK(t, "apply", "-f", labelled.file(t)) // and replicas back to the manifest's 2, as kubectl apply does
		}, func() string { return pinned }, 1, 2},
		{"the same manifest re-applied server-side, as Flux and Argo CD do, starts no rollout", func(t *testing.T) {
			// --force-conflicts as they do: fields kubectl scale and client-side apply set change owner.
			kubectlOK(t, "apply", "--server-side", "--force-conflicts", "-f", git.file(t))
		}, func() string { return pinned }, 1, 2},
		{"after the tag moved in the registry, re-applies client-side and server-side start no rollout", func(t *testing.T) {
			moved = push(t, s.plain, name+":v1")
			waitOutCacheTTL() // the registry would answer the moved digest
			kubectlOK(t, "apply", "-f", git.file(t))
			kubectlOK(t, "apply", "--server-side", "--force-conflicts", "-f", git.file(t))
		}, func() string { return pinned }, 1, 2},
		{"kubectl rollout restart pins the moved tag's digest in one new ReplicaSet", func(t *testing.T) {
			kubectlOK(t, "-n", ns, "rollout", "restart", "deployment/web")
		}, func() string { return repo + ":v1@" + moved }, 2, 2},
		{"kubectl rollout undo brings the old digest back without a third ReplicaSet", func(t *testing.T) {
			kubectlOK(t, "-n", ns, "rollout", "undo", "deployment/web")
		}, func() string { return pinned }, 2, 2},
		{"kubectl set image pins the new tag", func(t *testing.T) {
			second = push(t, s.plain, name+":v2")
			kubectlOK(t, "-n", ns, "set", "image", "deployment/web", "app="+repo+":v2")
		}, func() string { return repo + ":v2@" + second }, 3, 2},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) {
			st.do(t)
			waitSettled(t, ns, st.image(), st.sets, st.replicas)
		}) {
			return
		}
	}
	t.Run("nothing changes for 10 seconds afterwards", func(t *testing.T) {
		before := observe(t, ns)
		time.Sleep(10 * time.Second)
		after := observe(t, ns)
		if before.String() != after.String() {
			t.Fatalf("churn:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}
