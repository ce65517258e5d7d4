package registries_test

import (
	"net/url"
	"testing"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

func entry(t *testing.T, name, apiURL, prefix string, mod ...func(*registries.Entry)) *registries.Entry {
	t.Helper()
	u, err := url.Parse(apiURL)
	if err != nil {
		t.Fatal(err)
	}
	e := &registries.Entry{Config: client.Config{Name: name, APIURL: u}, Prefix: prefix}
	for _, m := range mod {
		m(e)
	}
	e.SetDefaults()
	if errs := e.Validate(nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	return e
}

func TestImagesMatchTheLongestPrefixOnPathSegmentBoundaries(t *testing.T) {
	set, err := registries.NewSet([]*registries.Entry{
		entry(t, "ghcr", "https://ghcr.io", "ghcr.io"),
		entry(t, "team", "https://ghcr.io/", "ghcr.io/team"),
		entry(t, "hub", "https://registry-1.docker.io", "docker.io"),
		entry(t, "local", "http://127.0.0.1:5000", "127.0.0.1:5000"),
		entry(t, "team-a-only", "https://internal.example", "internal.example", func(e *registries.Entry) { e.Namespaces = []string{"team-a", "prod-*"} }),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, image, ns, wantEntry, wantRepo string
	}{
		{"a longer prefix wins", "ghcr.io/team/app:1", "default", "team", "team/app"},
		{"a prefix does not match inside a path segment", "ghcr.io/teamb/x:1", "default", "ghcr", "teamb/x"},
		{"a bare name is Docker Hub's library", "nginx", "default", "hub", "library/nginx"},
		{"library/ is Docker Hub", "library/nginx:1.25", "default", "hub", "library/nginx"},
		{"docker.io/ without library is Docker Hub", "docker.io/nginx", "default", "hub", "library/nginx"},
		{"index.docker.io is Docker Hub", "index.docker.io/library/nginx:1", "default", "hub", "library/nginx"},
		{"a user repository on Docker Hub", "bitnami/redis:7", "default", "hub", "bitnami/redis"},
		{"a host with a port", "127.0.0.1:5000/x/y:2", "default", "local", "x/y"},
		{"a host with a port is not a tag", "127.0.0.1:5000/x", "default", "local", "x"},
		{"a namespace-restricted entry matches its namespaces", "internal.example/a:1", "team-a", "team-a-only", "a"},
		{"a namespace-restricted entry matches globs", "internal.example/a:1", "prod-eu", "team-a-only", "a"},
		{"a namespace-restricted entry ignores other namespaces", "internal.example/a:1", "team-b", "", ""},
		{"an unconfigured registry matches nothing", "quay.io/x/y:1", "default", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := imageref.ParseImage(tc.image)
			if err != nil {
				t.Fatal(err)
			}
			tgt, ok := set.Match(img, tc.ns)
			if tc.wantEntry == "" {
				if ok {
					t.Fatalf("matched %s", tgt.Entry.Name)
				}
				return
			}
			if !ok {
				t.Fatal("no match")
			}
			if tgt.Entry.Name != tc.wantEntry || tgt.Repository != tc.wantRepo {
				t.Errorf("got %s %s, want %s %s", tgt.Entry.Name, tgt.Repository, tc.wantEntry, tc.wantRepo)
			}
		})
	}
}

func TestDockerHubImagesFallBackToTheDefaultEntryWithItsDefaultNamespace(t *testing.T) {
	set, err := registries.NewSet([]*registries.Entry{
		entry(t, "mirror", "https://mirror.example", "mirror.example", func(e *registries.Entry) { e.Default, e.DefaultNS = true, "hub" }),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ image, wantRepo string }{
		{"nginx:1", "hub/nginx"},
		{"docker.io/bitnami/redis", "bitnami/redis"},
		{"mirror.example/x/y", "x/y"},
	}
	for _, tc := range tests {
		img, _ := imageref.ParseImage(tc.image)
		tgt, ok := set.Match(img, "default")
		if !ok || tgt.Repository != tc.wantRepo || tgt.Entry.Name != "mirror" {
			t.Errorf("%s: %v %+v, want %s", tc.image, ok, tgt, tc.wantRepo)
		}
	}
	img, _ := imageref.ParseImage("quay.io/x/y")
	if _, ok := set.Match(img, "default"); ok {
		t.Errorf("a non-Docker-Hub image fell back to the default entry")
	}
}
