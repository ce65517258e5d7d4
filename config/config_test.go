package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

func TestTheSeedExamplesLoadVerbatim(t *testing.T) {
	tests := []struct {
		file, name, prefix, creds string
		expire                    time.Duration
	}{
		{"testdata/seed-ecr.yaml", "ECR", "000000000000.dkr.ecr.eu-west-1.amazonaws.com", "ext:/scripts/login.sh", 10 * time.Hour},
		{"testdata/seed-ghcr.yaml", "GitHub Container Registry", "ghcr.io", "secret:argocd/ghcr-secret#token", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			cl := c.Registries.Entries()
			if len(cl) != 1 {
				t.Fatalf("%d entries, want 1", len(cl))
			}
			e := cl[0]
			if e.Name != tc.name || e.Prefix != tc.prefix || credsOf(e) != tc.creds || e.CredsExpire != tc.expire {
				t.Errorf("entry = %+v", e)
			}
			if !e.Ping {
				t.Errorf("ping: yes was not read as true")
			}
			if e.Insecure {
				t.Errorf("insecure is true")
			}
			if c.Policy.Mode != config.ModePin || c.Policy.OnError != config.OnErrorIgnore || c.Policy.CacheTTL != 5*time.Minute || c.Policy.ResolveTimeout != 8*time.Second {
				t.Errorf("policy defaults = %+v", c.Policy)
			}
		})
	}
}

func TestTheFullContractExampleLoads(t *testing.T) {
	c, err := config.Load("testdata/contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := c.Registries.Entries()[0]
	rp := c.RegistryPolicy(e)
	if e.CredsTimeout != 10*time.Second || rp.OnError != config.OnErrorFail || len(e.Namespaces) != 2 || len(rp.Platforms) != 2 {
		t.Errorf("entry = %+v", e)
	}
	if len(c.Policy.Images) != 1 || c.Policy.Images[0].Prefix != "ghcr.io/acme/api" {
		t.Errorf("images = %+v", c.Policy.Images)
	}
}

const entry = "registries:\n- name: r1\n  api_url: https://r1.example\n  prefix: r1.example\n"

func TestInvalidConfigsGiveOneErrorNamingTheEntryAndTheField(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"an unknown registry key", entry + "  pingg: yes\n", []string{`registries[0] "r1"`, `"pingg"`}},
		{"an unknown top-level key", "registry: []\n", []string{`"registry"`}},
		{"an unknown policy key", "policy:\n  cachettl: 5m\n", []string{"policy", `"cachettl"`}},
		{"an unknown image rule key", "policy:\n  images:\n  - prefix: x.io/a\n    constraints: ~1\n", []string{"policy", "images[0]", `"constraints"`}},
		{"a bad credsexpire", entry + "  credsexpire: 10x\n", []string{`registries[0] "r1"`, "credsexpire", `"10x"`}},
		{"a bad credstimeout", entry + "  credstimeout: soon\n", []string{`registries[0] "r1"`, "credstimeout"}},
		{"a bad cache_ttl", "policy:\n  cache_ttl: forever\n", []string{"policy", "cache_ttl"}},
		{"a non-boolean ping", entry + "  ping: maybe\n", []string{`registries[0] "r1"`, "ping"}},
		{"an api_url that is not http(s)", "registries:\n- name: r1\n  api_url: ftp://r1.example\n  prefix: r1.example\n", []string{`registries[0] "r1"`, "api_url"}},
		{"a missing api_url", "registries:\n- name: r1\n  prefix: r1.example\n", []string{`registries[0] "r1"`, "api_url"}},
		{"a missing prefix", "registries:\n- name: r1\n  api_url: https://r1.example\n", []string{`registries[0] "r1"`, "prefix"}},
		{"a duplicate prefix", entry + "- name: r2\n  api_url: https://r1.example\n  prefix: r1.example/\n", []string{`"r2"`, "prefix", `"r1"`}},
		{"two default entries", entry + "  default: true\n- name: r2\n  api_url: https://r2.example\n  prefix: r2.example\n  default: true\n", []string{`"r2"`, "default", `"r1"`}},
		{"a bad credentials source", entry + "  credentials: vault:x\n", []string{`registries[0] "r1"`, "credentials"}},
		{"a bad secret source", entry + "  credentials: secret:nokey\n", []string{`registries[0] "r1"`, "credentials", "secret:namespace/name#key"}},
		{"a bad on_error", entry + "  on_error: panic\n", []string{`registries[0] "r1"`, "on_error"}},
		{"a bad tagsortmode", entry + "  tagsortmode: newest\n", []string{`registries[0] "r1"`, "tagsortmode"}},
		{"a bad platform", entry + "  platforms: [amd64]\n", []string{`registries[0] "r1"`, "platforms"}},
		{"a missing ca_file", entry + "  ca_file: /nonexistent/ca.pem\n", []string{`"r1"`, "ca_file"}},
		{"a ca_data without a certificate", entry + "  ca_data: hello\n", []string{`"r1"`, "ca_data"}},
		{"a bad policy mode", "policy:\n  mode: dry\n", []string{"policy", "mode"}},
		{"a bad policy strategy", "policy:\n  strategy: newest\n", []string{"policy", "strategy"}},
		{"a bad allow_tags regexp", "policy:\n  images:\n  - prefix: x.io/a\n    allow_tags: 'regexp:(['\n", []string{"images[0]", "allow_tags", "regexp"}},
		{"an allow_tags without regexp:", "policy:\n  images:\n  - prefix: x.io/a\n    allow_tags: '^v1'\n", []string{"images[0]", "allow_tags"}},
		{"a bad semver constraint", "policy:\n  images:\n  - prefix: x.io/a\n    constraint: '~>banana'\n", []string{"images[0]", "constraint"}},
		{"a bad ignore_tags glob", "policy:\n  images:\n  - prefix: x.io/a\n    ignore_tags: ['[']\n", []string{"images[0]", "ignore_tags"}},
		{"a duplicate image rule", "policy:\n  images:\n  - prefix: nginx\n  - prefix: index.docker.io/nginx\n", []string{"images[1]", "prefix"}},
		{"not YAML at all", "registries: [\n", []string{"YAML"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestACredentialIsNeverQuotedInAConfigError(t *testing.T) {
	// A user pasted a secret where the source belongs.
	_, err := config.Parse([]byte(entry + "  credentials: admin:s3cr3t-value\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	if strings.Contains(err.Error(), "s3cr3t-value") {
		t.Errorf("error shows the credential: %v", err)
	}
}

func TestAnEmptyFileIsAValidConfigThatResolvesNothing(t *testing.T) {
	c, err := config.Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Registries.Entries()) != 0 || c.Policy.Mode != config.ModePin {
		t.Errorf("config = %+v", c)
	}
}

func TestImageRulesMatchTheLongestPrefixOnSegmentBoundaries(t *testing.T) {
	c, err := config.Parse([]byte(`policy:
  images:
  - prefix: ghcr.io/acme
    strategy: alphabetical
  - prefix: ghcr.io/acme/api
    constraint: "~1.4"
  - prefix: nginx
    strategy: newest-build
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ image, want string }{
		{"ghcr.io/acme/api:1", "semver"},
		{"ghcr.io/acme/api-gw:1", "alphabetical"},
		{"ghcr.io/acmeb/x:1", ""},
		{"nginx", "newest-build"},
		{"docker.io/library/nginx:1", "newest-build"},
	}
	for _, tc := range tests {
		img, err := imageref.ParseImage(tc.image)
		if err != nil {
			t.Fatal(err)
		}
		f := c.Policy.Rule(img)
		got := ""
		if f.Strategy != nil {
			got = string(*f.Strategy)
		}
		if got != tc.want {
			t.Errorf("%s: strategy %q, want %q", tc.image, got, tc.want)
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTheWatcherKeepsTheLastGoodConfigWhenANewOneIsBad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "policy:\n  mode: pin\n")
	w, err := config.NewWatcher(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "policy:\n  mode: report\n")
	if !w.Reload() || w.Current().Policy.Mode != config.ModeReport {
		t.Fatalf("a good change did not take effect")
	}
	writeFile(t, path, "policy:\n  mode: bogus\n")
	if w.Reload() || w.Current().Policy.Mode != config.ModeReport {
		t.Fatalf("a bad change replaced the config")
	}
}

// credsOf is an entry's credentials as written ("" for anonymous).
func credsOf(e *registries.Entry) string {
	if e.Credentials == nil {
		return ""
	}
	return e.Credentials.String()
}
