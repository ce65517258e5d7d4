package registries_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// headThrough makes one authenticated request for repo:1 through the entry's client.
func headThrough(t *testing.T, set *registries.Set, image string) error {
	t.Helper()
	img, _ := imageref.ParseImage(image)
	tgt, ok := set.Match(img, "default")
	if !ok {
		t.Fatalf("no entry for %s", image)
	}
	repo, _ := tgt.Client.Repository(tgt.Repository)
	return tgt.Do(ctx(t), repo, func(rt http.RoundTripper) error {
		_, err := remote.Head(repo.Tag("1"), remote.WithTransport(rt), remote.WithContext(ctx(t)))
		return err
	})
}

// credsexpire bounds how long a credential is used, including inside the
// authenticated transport kept per repository, not only in the credential cache.
func TestACachedTransportHonoursCredsExpire(t *testing.T) {
	srv := registrytest.New(t, registrytest.WithBasic("u", credtest.SecretValue))
	srv.PushImage(t, "app:1")
	login, runs := credtest.CountingScript(t, "0")
	e := entry(t, "test", srv.URL, srv.Host, func(e *registries.Entry) {
		e.Credentials = source(t, "ext:"+login)
		e.CredsExpire = 300 * time.Millisecond
	})
	set, err := registries.NewSet([]*registries.Entry{e}, registries.WithCredentials(credentials.New()))
	if err != nil {
		t.Fatal(err)
	}
	if err := headThrough(t, set, srv.Host+"/app:1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if err := headThrough(t, set, srv.Host+"/app:1"); err != nil {
		t.Fatal(err)
	}
	if n := runs(); n != 2 {
		t.Errorf("script runs = %d, want 2: the transport kept a credential past credsexpire", n)
	}
}

// Two auths keys for one registry are chosen deterministically, the most
// specific first, as the kubelet does, whatever the map order.
func TestAPullSecretKeyIsChosenMostSpecificFirst(t *testing.T) {
	entryFor := func(user string) string {
		return fmt.Sprintf(`{"auth":"%s"}`, credtest.B64(user+":"+credtest.SecretValue))
	}
	reader := fake.NewClientBuilder().WithObjects(
		credtest.Secret("ci", "hub", credtest.DockerConfig(`"docker.io":`+entryFor("short")+`,"https://index.docker.io/v1/":`+entryFor("legacy"))),
		credtest.Secret("ci", "orgs", credtest.DockerConfig(`"ghcr.io":`+entryFor("any")+`,"ghcr.io/org-a":`+entryFor("a")+`,"https://ghcr.io/org-b/":`+entryFor("b")+`,"ghcr.io/org-a/team":`+entryFor("team"))),
		credtest.Secret("ci", "scoped", credtest.DockerConfig(`"ghcr.io/org-a":`+entryFor("a"))),
	).Build()
	tests := []struct{ src, host, repo, user string }{
		{"pullsecret:ci/hub", "docker.io", "library/nginx", "short"},
		{"pullsecret:ci/orgs", "ghcr.io", "org-a/app", "a"},
		{"pullsecret:ci/orgs", "ghcr.io", "org-b/app", "b"},
		{"pullsecret:ci/orgs", "ghcr.io", "org-a/team/app", "team"},
		{"pullsecret:ci/orgs", "ghcr.io", "org-ab/app", "any"},
		{"pullsecret:ci/orgs", "ghcr.io", "other/app", "any"},
		{"pullsecret:ci/scoped", "ghcr.io", "other/app", ""},
	}
	c := credentials.New(credentials.WithSecretReader(reader))
	for _, tc := range tests {
		t.Run(tc.src+" "+tc.repo, func(t *testing.T) {
			for i := 0; i < 20; i++ { // map order varies from run to run
				c := c
				if i%2 == 1 {
					c = credentials.New(credentials.WithSecretReader(reader)) // uncached
				}
				got, err := get(ctx(t), c, credtest.Source(t, tc.src), credentials.FetchOptions{Host: tc.host, Repository: tc.repo})
				if err != nil {
					t.Fatal(err)
				}
				if got.Username != tc.user {
					t.Fatalf("user %q, want %q", got.Username, tc.user)
				}
			}
		})
	}
}
