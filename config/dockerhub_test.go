package config_test

import (
	"fmt"
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// A rule and a registry entry name Docker Hub repositories the same way:
// every spelling of a rule matches every spelling of the image.
func TestDockerHubRuleSpellingsMatchEverySpellingOfTheImage(t *testing.T) {
	official := []string{"nginx", "nginx:1", "library/nginx", "docker.io/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx", "registry-1.docker.io/nginx:1"}
	org := []string{"acme/app", "docker.io/acme/app:1", "index.docker.io/acme/app"}
	tests := []struct {
		rule    string
		matches []string
		misses  []string
	}{
		{"nginx", official, org},
		{"library/nginx", official, org},
		{"docker.io/nginx", official, org},
		{"index.docker.io/nginx", official, org},
		{"docker.io/library/nginx", official, org},
		{"index.docker.io/library/nginx", official, org},
		{"https://registry-1.docker.io/library/nginx/", official, org},
		{"docker.io/acme", org, official},
		{"acme", org, official},
		{"docker.io/library", official, org},
	}
	for _, tc := range tests {
		t.Run(tc.rule, func(t *testing.T) {
			c, err := config.Parse([]byte(fmt.Sprintf("policy:\n  images:\n  - prefix: %q\n    strategy: alphabetical\n", tc.rule)))
			if err != nil {
				t.Fatal(err)
			}
			for _, image := range append(append([]string{}, tc.matches...), tc.misses...) {
				img, err := imageref.ParseImage(image)
				if err != nil {
					t.Fatal(err)
				}
				want := contains(tc.matches, image)
				if got := c.Policy.Rule(img).Strategy != nil; got != want {
					t.Errorf("rule %q on %q: matched = %v, want %v", tc.rule, image, got, want)
				}
			}
		})
	}
}

func TestDockerHubEntrySpellingsMatchEverySpellingOfTheImage(t *testing.T) {
	official := []string{"nginx", "library/nginx", "docker.io/nginx", "index.docker.io/library/nginx"}
	for _, prefix := range []string{"docker.io/nginx", "index.docker.io/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx", "registry-1.docker.io/library/nginx", "docker.io", "index.docker.io"} {
		t.Run(prefix, func(t *testing.T) {
			c, err := config.Parse([]byte(fmt.Sprintf("registries:\n- name: hub\n  api_url: https://registry-1.docker.io\n  prefix: %s\n", prefix)))
			if err != nil {
				t.Fatal(err)
			}
			for _, image := range official {
				img, _ := imageref.ParseImage(image)
				if _, ok := c.Registries.Match(img, "team-a"); !ok {
					t.Errorf("entry %q does not match %q", prefix, image)
				}
			}
			other, _ := imageref.ParseImage("acme/nginx")
			if _, ok := c.Registries.Match(other, "team-a"); ok && prefix != "docker.io" && prefix != "index.docker.io" {
				t.Errorf("entry %q matches acme/nginx", prefix)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
