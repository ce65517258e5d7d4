package registries_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// pullSecretsRegistry is one registry where team-a/ belongs to user a and
// team-b/ to user b, seen through one imagepullsecrets entry.
type pullSecretsRegistry struct {
	srv    *registrytest.Server
	set    *registries.Set
	reader ctrlclient.Client
}

func newPullSecretsRegistry(t *testing.T) *pullSecretsRegistry {
	t.Helper()
	srv := registrytest.New(t)
	srv.PushImage(t, "team-a/app:1")
	srv.PushImage(t, "team-b/app:1")
	srv.AuthPerRepository(map[string]string{"team-a": "a", "team-b": "b"}, func(u string) string { return credtest.SecretValue + u })
	reader := fake.NewClientBuilder().Build()
	e := entry(t, "shared", srv.URL, srv.Host, func(e *registries.Entry) { e.Credentials = source(t, "imagepullsecrets") })
	set, err := registries.NewSet([]*registries.Entry{e}, registries.WithCredentials(credentials.New(credentials.WithSecretReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	return &pullSecretsRegistry{srv: srv, set: set, reader: reader}
}

// head reads repo:1 as workload w would; it returns the identity used.
func (p *pullSecretsRegistry) head(t *testing.T, w credentials.Workload, repo string) (client.Identity, error) {
	t.Helper()
	img, _ := imageref.ParseImage(p.srv.Host + "/" + repo + ":1")
	tgt, ok := p.set.Match(img, w.Namespace)
	if !ok {
		t.Fatalf("no entry for %s", repo)
	}
	pull, err := tgt.ReadPullSecrets(ctx(t), w)
	if err != nil {
		return client.Identity{}, err
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
	for _, o := range []ctrlclient.Object{
		credtest.PullSecret("team-a", "regcred", p.srv.Host, "a"),
		credtest.PullSecret("team-b", "regcred", p.srv.Host, "b"),
		credtest.ServiceAccount("team-a", "default"), credtest.ServiceAccount("team-b", "default"),
		credtest.ServiceAccount("team-c", "default"),
	} {
		if err := p.reader.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	a := credentials.Workload{Namespace: "team-a", PullSecrets: []string{"regcred"}}
	b := credentials.Workload{Namespace: "team-b", PullSecrets: []string{"regcred"}}
	none := credentials.Workload{Namespace: "team-c"}
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
	if strings.Contains(err.Error(), credtest.SecretValue) {
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
	if idA.Credentials != "imagepullsecrets" || strings.Contains(fmt.Sprint(idA), credtest.SecretValue) {
		t.Errorf("identity %+v", idA)
	}
}

func TestAnImagePullSecretsEntryLooksNothingUpWithoutTheObjectsSecrets(t *testing.T) {
	p := newPullSecretsRegistry(t)
	img, _ := imageref.ParseImage(p.srv.Host + "/team-a/app:1")
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

// The entry's credentials come with each admission: its ping can only say
// whether the registry answers, and a 401 asking for credentials does.
func TestThePingOfAnImagePullSecretsEntryOnlyChecksTheRegistryAnswers(t *testing.T) {
	p := newPullSecretsRegistry(t)
	img, _ := imageref.ParseImage(p.srv.Host + "/team-a/app:1")
	tgt, _ := p.set.Match(img, "team-a")
	if err := tgt.Client.Ping(ctx(t)); err != nil {
		t.Errorf("ping: %v", err)
	}
	p.srv.Close()
	if err := tgt.Client.Ping(ctx(t)); err == nil {
		t.Error("the ping of a stopped registry succeeded")
	}
}

// As the kubelet does, a credential the registry refuses moves the lookup to
// the next one the object presents; the one accepted is remembered, so the
// next lookup asks with it at once.
func TestARefusedPullSecretCredentialMovesTheLookupToTheNextAndTheAcceptedOneIsKept(t *testing.T) {
	p := newPullSecretsRegistry(t)
	for _, o := range []ctrlclient.Object{
		credtest.PullSecret("ci", "robot-b", p.srv.Host, "b"),
		credtest.PullSecret("ci", "robot-a", p.srv.Host, "a"),
	} {
		if err := p.reader.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	w := credentials.Workload{Namespace: "ci", PullSecrets: []string{"robot-b", "robot-a"}}
	if _, err := p.head(t, w, "team-a/app"); err != nil {
		t.Fatalf("robot-a's credential, the second, was not tried: %v", err)
	}
	p.srv.Reset()
	if _, err := p.head(t, w, "team-a/app"); err != nil {
		t.Fatal(err)
	}
	if n := p.srv.Count("HEAD", "manifest"); n != 1 {
		t.Errorf("%d manifest requests on the second lookup, want 1: the accepted credential was not kept (%v)", n, p.srv.Received())
	}
	if _, err := p.head(t, w, "team-b/app"); err != nil {
		t.Fatalf("robot-b's credential, the first, did not read team-b: %v", err)
	}
	_, err := p.head(t, credentials.Workload{Namespace: "ci", PullSecrets: []string{"robot-b"}}, "team-a/app")
	if err == nil || !strings.Contains(err.Error(), `presented the auths entry "`+p.srv.Host+`" of Secret ci/robot-b`) {
		t.Errorf("err = %v, want it to name the Secret presented", err)
	}
}

// A credential the registry refused is not "the accepted one": once every
// credential was refused, the next lookup tries them all again, in order,
// as the kubelet does, rather than only the last one refused.
func TestAfterEveryPullSecretCredentialWasRefusedTheNextLookupTriesThemAllAgain(t *testing.T) {
	p := newPullSecretsRegistry(t)
	for _, o := range []ctrlclient.Object{
		credtest.PullSecret("ci", "robot-a", p.srv.Host, "a"),
		credtest.PullSecret("ci", "robot-b", p.srv.Host, "b"),
	} {
		if err := p.reader.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	w := credentials.Workload{Namespace: "ci", PullSecrets: []string{"robot-a", "robot-b"}}
	// A moment when the registry forbids team-a to everyone (a permission
	// being changed, a repository being created).
	p.srv.SetFault(func(rw http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			http.Error(rw, `{"errors":[{"code":"DENIED","message":"denied"}]}`, http.StatusForbidden)
			return true
		}
		return false
	})
	if _, err := p.head(t, w, "team-a/app"); err == nil {
		t.Fatal("the forbidden lookup succeeded")
	}
	p.srv.AuthPerRepository(map[string]string{"team-a": "a", "team-b": "b"}, func(u string) string { return credtest.SecretValue + u })
	if _, err := p.head(t, w, "team-a/app"); err != nil {
		t.Fatalf("robot-a, the first credential, was not tried again once the registry accepts it: %v", err)
	}
}
