package envtest

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The robot accounts of two teams on the token registry: each may pull its
// own team's repositories only. TestMain checks that neither password was
// ever printed.
const (
	pullPassA = "e2e-robot-a-Pa55-never-printed"
	pullPassB = "e2e-robot-b-Pa55-never-printed"
)

// pullSecretIn creates a kubernetes.io/dockerconfigjson Secret for the
// token registry in ns.
func pullSecretIn(t *testing.T, ns, name, user, pass string) {
	t.Helper()
	c, _ := kube(t)
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeDockerConfigJson,
		StringData: map[string]string{corev1.DockerConfigJsonKey: fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, s.tokenReg.Host, auth)}}
	if err := c.Create(ctx(t), sec); err != nil {
		t.Fatal(err)
	}
}

// TestEachNamespaceGetsOnlyWhatItsOwnPullSecretsCanRead: one registry
// (distribution, bearer tokens) with a robot account per team; namespace A
// presents its robot through the Deployment's imagePullSecrets, namespace B
// through its ServiceAccount's. Each is pinned in its own repository; B,
// asking for A's image after A was pinned (the answer cached), is denied
// (on_error: fail), never given A's digest; nothing prints a password.
func TestEachNamespaceGetsOnlyWhatItsOwnPullSecretsCanRead(t *testing.T) {
	t.Parallel()
	s.tokens.Grant("robot-a", pullPassA, "pullsecrets/a")
	s.tokens.Grant("robot-b", pullPassB, "pullsecrets/b")
	repoA, repoB := "pullsecrets/a/"+uniq("app"), "pullsecrets/b/"+uniq("app")
	digestA, digestB := push(t, s.tokenReg, repoA+":1"), push(t, s.tokenReg, repoB+":1")
	imageA, imageB := s.tokenReg.Host+"/"+repoA+":1", s.tokenReg.Host+"/"+repoB+":1"
	nsA, nsB := tenantNamespace(t, "pull-a"), tenantNamespace(t, "pull-b")
	pullSecretIn(t, nsA, "regcred", "robot-a", pullPassA)
	pullSecretIn(t, nsB, "regcred", "robot-b", pullPassB)
	c, w := kube(t)
	if err := c.Create(ctx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "puller"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}); err != nil {
		t.Fatal(err)
	}
	inA := func(name, image string) *appsv1.Deployment {
		d := deploy(nsA, nil, image)
		d.Name = name
		d.Spec.Template.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		return d
	}
	inB := func(name, image string) *appsv1.Deployment {
		d := deploy(nsB, nil, image)
		d.Name = name
		d.Spec.Template.Spec.ServiceAccountName = "puller"
		return d
	}
	noSecret := func(what string) {
		t.Helper()
		if leaked := s.leakedCredentials(); leaked != "" {
			t.Fatalf("after %s, the webhook printed a credential (%s)", what, leaked)
		}
		for _, p := range []string{pullPassA, pullPassB} {
			if strings.Contains(w.all(), p) {
				t.Fatalf("after %s, a warning holds a password", what)
			}
		}
	}

	a := inA("web", imageA)
	if err := c.Create(ctx(t), a); err != nil {
		t.Fatalf("namespace A was denied its own image: %v", err)
	}
	if got := stored(t, a); got != imageA+"@"+digestA {
		t.Fatalf("namespace A stored %q, want it pinned with its own pull secret (warnings: %s)", got, w.all())
	}
	noSecret("namespace A's admission")

	b := inB("web", imageB)
	if err := c.Create(ctx(t), b); err != nil {
		t.Fatalf("namespace B was denied its own image: %v", err)
	}
	if got := stored(t, b); got != imageB+"@"+digestB {
		t.Fatalf("namespace B stored %q, want it pinned with its ServiceAccount's pull secret (warnings: %s)", got, w.all())
	}

	// A's answer is cached: B, whose robot cannot read A's repository,
	// must not be served it.
	steal := inB("steal", imageA)
	err := c.Create(ctx(t), steal)
	if err == nil {
		t.Fatalf("namespace B was admitted with A's image: stored %q", stored(t, steal))
	}
	if strings.Contains(err.Error(), digestA) {
		t.Fatalf("the denial names A's digest: %v", err)
	}
	if !strings.Contains(err.Error(), `container "c0"`) || !strings.Contains(err.Error(), "Secret "+nsB+"/regcred") {
		t.Errorf("the denial does not name the container and the Secret presented: %v", err)
	}
	noSecret("namespace B's denial")
	for _, p := range []string{pullPassA, pullPassB} {
		if strings.Contains(err.Error(), p) {
			t.Fatal("the denial holds a password")
		}
	}

	// A Deployment naming a Secret that does not exist: denied, naming it.
	missing := inA("missing", imageA)
	missing.Spec.Template.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "nope"}}
	err = c.Create(ctx(t), missing)
	if err == nil || !strings.Contains(err.Error(), "Secret "+nsA+"/nope") {
		t.Fatalf("a missing pull secret: err = %v, want a denial naming Secret %s/nope", err, nsA)
	}
	noSecret("the missing Secret's denial")
}

// resolve shows which Secrets an imagepullsecrets entry used (names and
// resourceVersions, read through the kubeconfig) and whom they log in as,
// never a value; a ServiceAccount's pull secrets when the Pod names none.
func TestResolveShowsThePullSecretsAndIdentityItUsed(t *testing.T) {
	t.Parallel()
	s.tokens.Grant("robot-a", pullPassA, "pullsecrets/a")
	repo := "pullsecrets/a/" + uniq("cli")
	digest := push(t, s.tokenReg, repo+":1")
	image := s.tokenReg.Host + "/" + repo + ":1"
	ns := tenantNamespace(t, "pull-cli")
	pullSecretIn(t, ns, "regcred", "robot-a", pullPassA)
	c, _ := kube(t)
	if err := c.Create(ctx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "puller"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(t.TempDir(), "deployment.yaml")
	doc := fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: %s}\nspec:\n  template:\n    spec:\n      serviceAccountName: puller\n      containers: [{name: app, image: %q}]\n", ns, image)
	if err := os.WriteFile(manifest, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-n", ns, "--image-pull-secrets", "regcred"}, {"-n", ns, "--service-account", "puller"}, {"--pull-secrets-from", manifest}} {
		t.Run(args[len(args)-2], func(t *testing.T) {
			code, out, errOut := cli(t, nil, append([]string{"resolve", "--config", s.config, "--kubeconfig", s.kubecfg}, append(args, image)...)...)
			for _, p := range []string{pullPassA, pullPassB} {
				if strings.Contains(out+errOut, p) {
					t.Fatal("resolve printed a password")
				}
			}
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			t.Log("\n" + out)
			for _, want := range []string{
				"credentials: imagepullsecrets (imagepullsecrets), as user robot-a",
				"secrets:     Secrets regcred (resourceVersion ",
				"in namespace " + ns,
				"credential ID ",
				"pinned:      " + image + "@" + digest,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
	code, out, errOut := cli(t, nil, "resolve", "--config", s.config, "--kubeconfig", s.kubecfg, "-n", ns, "--image-pull-secrets", "nope", image)
	if code != 1 || !strings.Contains(out, "Secret "+ns+"/nope") {
		t.Errorf("a missing Secret: exit %d, want 1 and an error naming it:\n%s%s", code, out, errOut)
	}
}
