package registries_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func pullSecret(ns, name, host, user string) *corev1.Secret {
	s := secret(ns, name, dockerConfig(fmt.Sprintf(`%q:{"auth":%q}`, host, b64(user+":"+secretValue+user))))
	s.Type = corev1.SecretTypeDockerConfigJson
	return s
}

func serviceAccount(ns, name string, secrets ...string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, s := range secrets {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return sa
}

// pullSecretsRegistry is one registry where team-a/ belongs to user a and
// team-b/ to user b, seen through one imagepullsecrets entry.
type pullSecretsRegistry struct {
	srv    *registrytest.Server
	set    *registries.Set
	reader client.Client
}

func newPullSecretsRegistry(t *testing.T) *pullSecretsRegistry {
	t.Helper()
	srv := registrytest.New(t)
	srv.PushImage(t, "team-a/app:1")
	srv.PushImage(t, "team-b/app:1")
	srv.AuthPerRepository(map[string]string{"team-a": "a", "team-b": "b"}, func(u string) string { return secretValue + u })
	reader := fake.NewClientBuilder().Build()
	e := entry(t, "shared", srv.URL, srv.Host, func(e *registries.Entry) { e.Credentials = "imagepullsecrets" })
	set, err := registries.NewSet([]*registries.Entry{e}, registries.WithCredentials(registries.NewCredentials(registries.WithSecretReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	return &pullSecretsRegistry{srv: srv, set: set, reader: reader}
}

// head reads repo:1 as workload w would; it returns the identity used.
func (p *pullSecretsRegistry) head(t *testing.T, w registries.Workload, repo string) (registries.Identity, error) {
	t.Helper()
	img, _ := registries.ParseImage(p.srv.Host + "/" + repo + ":1")
	tgt, ok := p.set.Match(img, w.Namespace)
	if !ok {
		t.Fatalf("no entry for %s", repo)
	}
	pull, err := tgt.ReadPullSecrets(ctx(t), w)
	if err != nil {
		return registries.Identity{}, err
	}
	tgt = tgt.WithPullSecrets(pull)
	ref, _ := tgt.Client.Repository(tgt.Repository)
	return tgt.Identity, tgt.Do(ctx(t), ref, func(rt http.RoundTripper) error {
		_, err := remote.Head(ref.Tag("1"), remote.WithTransport(rt), remote.WithContext(ctx(t)))
		return err
	})
}

func TestTwoNamespacesWithDifferentPullSecretsOnOneRegistryReadOnlyWhatTheirOwnSecretsReach(t *testing.T) {
	p := newPullSecretsRegistry(t) // Secrets need the server's address: created below
	for _, o := range []client.Object{
		pullSecret("team-a", "regcred", p.srv.Host, "a"),
		pullSecret("team-b", "regcred", p.srv.Host, "b"),
		serviceAccount("team-a", "default"), serviceAccount("team-b", "default"),
		serviceAccount("team-c", "default"),
	} {
		if err := p.reader.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	a := registries.Workload{Namespace: "team-a", PullSecrets: []string{"regcred"}}
	b := registries.Workload{Namespace: "team-b", PullSecrets: []string{"regcred"}}
	none := registries.Workload{Namespace: "team-c"}
	// team-a first, so that its transport (and Basic credential) is cached
	// for team-a/app when the others ask for the same repository.
	idA, err := p.head(t, a, "team-a/app")
	if err != nil {
		t.Fatalf("team-a could not read its own repository: %v", err)
	}
	idB, err := p.head(t, b, "team-a/app")
	if err == nil {
		t.Fatal("team-b read team-a's repository through team-a's cached transport")
	}
	if strings.Contains(err.Error(), secretValue) {
		t.Errorf("the error prints a credential: %v", err)
	}
	if _, err := p.head(t, b, "team-b/app"); err != nil {
		t.Fatalf("team-b could not read its own repository: %v", err)
	}
	if _, err := p.head(t, a, "team-b/app"); err == nil {
		t.Fatal("team-a read team-b's repository")
	}
	idNone, err := p.head(t, none, "team-a/app")
	if err == nil {
		t.Fatal("a namespace without pull secrets read team-a's repository")
	}
	if idA == idB || idA == idNone || idB == idNone {
		t.Errorf("identities are shared: a %+v, b %+v, none %+v", idA, idB, idNone)
	}
	if idNone.CredentialID != "none" {
		t.Errorf("a workload without pull secrets has credential ID %q, want none", idNone.CredentialID)
	}
	if idA.Credentials != "imagepullsecrets" || strings.Contains(fmt.Sprint(idA), secretValue) {
		t.Errorf("identity %+v", idA)
	}
}

func TestAPullSecretsIdentityIsItsNamespaceNamesAndResourceVersions(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(
		pullSecret("team-a", "one", "r.example", "a"),
		pullSecret("team-a", "two", "r.example", "a"),
		pullSecret("team-b", "one", "r.example", "a"),
		serviceAccount("team-a", "robot", "one"),
	).Build()
	c := registries.NewCredentials(registries.WithSecretReader(reader))
	id := func(w registries.Workload) string {
		t.Helper()
		p, err := c.ReadPullSecrets(ctx(t), w)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(p.String(), secretValue) {
			t.Errorf("String prints a credential: %s", p)
		}
		return p.ID()
	}
	first := id(registries.Workload{Namespace: "team-a", PullSecrets: []string{"one"}})
	if again := id(registries.Workload{Namespace: "team-a", PullSecrets: []string{"one"}}); again != first {
		t.Errorf("the same Secret read twice gave two identities: %s, %s", first, again)
	}
	if sa := id(registries.Workload{Namespace: "team-a", ServiceAccount: "robot"}); sa != first {
		t.Errorf("the ServiceAccount's Secret gave another identity than the object's: %s, %s", sa, first)
	}
	distinct := map[string]string{"team-a/one": first}
	for name, w := range map[string]registries.Workload{
		"team-b/one":      {Namespace: "team-b", PullSecrets: []string{"one"}},
		"team-a/one,two":  {Namespace: "team-a", PullSecrets: []string{"one", "two"}},
		"team-a/two,one":  {Namespace: "team-a", PullSecrets: []string{"two", "one"}},
		"team-a/two":      {Namespace: "team-a", PullSecrets: []string{"two"}},
		"team-a/(robot)":  {Namespace: "team-a", ServiceAccount: "robot"},
		"team-a/one,one2": {Namespace: "team-a", PullSecrets: []string{"one", "one"}},
	} {
		got := id(w)
		if name == "team-a/(robot)" || name == "team-a/one,one2" {
			continue // the same Secret as team-a/one, checked above
		}
		for other, oid := range distinct {
			if oid == got {
				t.Errorf("%s and %s share the identity %s", name, other, got)
			}
		}
		distinct[name] = got
	}
	// A rotated Secret (a new resourceVersion) is a new identity.
	var s corev1.Secret
	if err := reader.Get(ctx(t), client.ObjectKey{Namespace: "team-a", Name: "one"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"r.example":{"auth":"` + b64("a:rotated") + `"}}}`)
	if err := reader.Update(ctx(t), &s); err != nil {
		t.Fatal(err)
	}
	if rotated := id(registries.Workload{Namespace: "team-a", PullSecrets: []string{"one"}}); rotated == first {
		t.Errorf("the Secret changed (resourceVersion %s) but its identity did not", s.ResourceVersion)
	}
}

func TestPullSecretsComeFromTheObjectElseFromItsServiceAccountAsKubernetesDoes(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(
		pullSecret("team-a", "own", "r.example", "own-user"),
		pullSecret("team-a", "sa", "r.example", "sa-user"),
		serviceAccount("team-a", "default", "sa"),
		serviceAccount("team-a", "robot"),
	).Build()
	c := registries.NewCredentials(registries.WithSecretReader(reader))
	tests := []struct {
		name string
		w    registries.Workload
		want string
	}{
		{"the object's own, even with a ServiceAccount that names others", registries.Workload{Namespace: "team-a", PullSecrets: []string{"own"}}, "Secrets own"},
		{"the default ServiceAccount's when the object names none", registries.Workload{Namespace: "team-a"}, "Secrets sa"},
		{"a ServiceAccount without any: anonymous", registries.Workload{Namespace: "team-a", ServiceAccount: "robot"}, "no pull secrets"},
		{"the object's own need no ServiceAccount", registries.Workload{Namespace: "team-a", ServiceAccount: "missing", PullSecrets: []string{"own"}}, "Secrets own"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.ReadPullSecrets(ctx(t), tc.w)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.String(), tc.want) {
				t.Errorf("%s, want %s…", p, tc.want)
			}
		})
	}
}

func TestAPullSecretThatCannotBeReadFailsNamingItNeverItsValue(t *testing.T) {
	notBase64 := secret("team-a", "not-base64", dockerConfig(`"r.example":{"auth":"`+secretValue+`!"}`))
	notJSON := secret("team-a", "not-json", map[string]string{corev1.DockerConfigJsonKey: `{"auths":` + secretValue})
	opaque := secret("team-a", "opaque", map[string]string{"token": secretValue})
	many := serviceAccount("team-a", "many")
	for i := 0; i < 20; i++ {
		many.ImagePullSecrets = append(many.ImagePullSecrets, corev1.LocalObjectReference{Name: fmt.Sprintf("s%d", i)})
	}
	reader := fake.NewClientBuilder().WithObjects(notBase64, notJSON, opaque, many, serviceAccount("team-a", "default", "gone")).Build()
	c := registries.NewCredentials(registries.WithSecretReader(reader))
	tests := []struct {
		name string
		w    registries.Workload
		want string
	}{
		{"a missing Secret", registries.Workload{Namespace: "team-a", PullSecrets: []string{"missing"}}, "Secret team-a/missing (named by the object's imagePullSecrets)"},
		{"a missing Secret the ServiceAccount names", registries.Workload{Namespace: "team-a"}, "Secret team-a/gone (named by ServiceAccount team-a/default)"},
		{"a missing ServiceAccount", registries.Workload{Namespace: "team-a", ServiceAccount: "robot"}, "ServiceAccount team-a/robot"},
		{"an auth that is not base64", registries.Workload{Namespace: "team-a", PullSecrets: []string{"not-base64"}}, "imagepullsecrets (Secret team-a/not-base64): the auth of \"r.example\" is not base64"},
		{"a config that is not JSON", registries.Workload{Namespace: "team-a", PullSecrets: []string{"not-json"}}, "imagepullsecrets (Secret team-a/not-json): .dockerconfigjson is not valid JSON"},
		{"a Secret that is no docker config", registries.Workload{Namespace: "team-a", PullSecrets: []string{"opaque"}}, "imagepullsecrets (Secret team-a/opaque): the secret has no .dockerconfigjson"},
		{"more Secrets than the bound", registries.Workload{Namespace: "team-a", ServiceAccount: "many"}, "names 20 pull secrets, more than 16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ReadPullSecrets(ctx(t), tc.w)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secretValue) {
				t.Errorf("the error prints a credential: %v", err)
			}
		})
	}
}

func TestAnImagePullSecretsEntryLooksNothingUpWithoutTheObjectsSecrets(t *testing.T) {
	p := newPullSecretsRegistry(t)
	img, _ := registries.ParseImage(p.srv.Host + "/team-a/app:1")
	tgt, _ := p.set.Match(img, "team-a")
	ref, _ := tgt.Client.Repository(tgt.Repository)
	p.srv.Reset()
	err := tgt.Do(ctx(t), ref, func(http.RoundTripper) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "no object's pull secrets") {
		t.Errorf("err = %v, want one saying the lookup carries no pull secrets", err)
	}
	if n := p.srv.Total(); n != 0 {
		t.Errorf("the registry saw %d requests", n)
	}
}
