package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/internal/cli"
)

// run runs a subcommand in process and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckPrintsEachEntryOfTheSeedsConfigAndItsPolicy(t *testing.T) {
	code, out, errOut := run(t, "check", "--config", "testdata/seed.yaml")
	if code != cli.ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errOut)
	}
	t.Log("\n" + out)
	for _, want := range []string{
		"config testdata/seed.yaml is valid",
		"  ECR\n",
		"prefix:      000000000000.dkr.ecr.eu-west-1.amazonaws.com",
		"api_url:     https://000000000000.dkr.ecr.eu-west-1.amazonaws.com",
		"credentials: ext: what the script /scripts/login.sh prints",
		"cached for 10h0m0s (credsexpire)",
		"  GitHub Container Registry\n",
		"api_url:     https://ghcr.io",
		`credentials: secret: key "token" of Secret argocd/ghcr-secret`,
		"mode: pin", "strategy: digest", "on_error: ignore", "cache_ttl: 5m0s", "resolve_timeout: 8s", "images: none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckWithJSONOutputDescribesCredentialsByTheirSource(t *testing.T) {
	code, out, _ := run(t, "check", "--config", "testdata/seed.yaml", "-o", "json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d", code)
	}
	var rep struct {
		Valid      bool
		Registries []struct {
			Name        string
			APIURL      string `json:"api_url"`
			Credentials struct{ Kind, Source, From string }
		}
		Policy struct{ Mode string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if !rep.Valid || len(rep.Registries) != 2 || rep.Policy.Mode != "pin" {
		t.Fatalf("report = %+v", rep)
	}
	byName := map[string]string{}
	for _, e := range rep.Registries {
		byName[e.Name] = e.Credentials.Kind + " " + e.Credentials.Source
	}
	if byName["ECR"] != "ext ext:/scripts/login.sh" || byName["GitHub Container Registry"] != "secret secret:argocd/ghcr-secret#token" {
		t.Errorf("credentials = %v", byName)
	}
}

func TestCheckFailsABrokenConfigWithTheServersOwnError(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"an unknown key", "registries:\n- name: r\n  api_url: https://r.example\n  prefix: r.example\n  pign: yes\n", `unknown key "pign"`},
		{"a bad duration", "registries:\n- name: r\n  api_url: https://r.example\n  prefix: r.example\n  credsexpire: 10 hours\n", "credsexpire"},
		{"a bad constraint", "policy:\n  images:\n  - prefix: ghcr.io/acme\n    constraint: \"~~1\"\n", "constraint"},
		{"two defaults", "registries:\n- name: a\n  api_url: https://a.example\n  prefix: a.example\n  default: true\n- name: b\n  api_url: https://b.example\n  prefix: b.example\n  default: true\n", "already the default"},
		{"a mistyped credential source", "registries:\n- name: r\n  api_url: https://r.example\n  prefix: r.example\n  credentials: user:hunter2-pasted-by-mistake\n", "credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.doc)
			_, serverErr := config.Load(path)
			if serverErr == nil {
				t.Fatal("the server accepts it")
			}
			code, out, errOut := run(t, "check", "--config", path)
			if code != cli.ExitFail {
				t.Errorf("exit %d, want 1", code)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if want := "image-pin-webhook check: " + serverErr.Error() + "\n"; errOut != want {
				t.Errorf("stderr = %q, want the server's error %q", errOut, want)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr = %q, want it to name %q", errOut, tc.want)
			}
			if strings.Contains(errOut, "hunter2") {
				t.Errorf("stderr repeats a credential: %q", errOut)
			}
		})
	}
}

func TestCheckOfAMissingFileOrBadFlagsSaysSo(t *testing.T) {
	code, _, errOut := run(t, "check", "--config", filepath.Join(t.TempDir(), "nope.yaml"))
	if code != cli.ExitFail || !strings.Contains(errOut, "nope.yaml") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(t, "check", "--config", "testdata/seed.yaml", "-o", "yaml")
	if code != cli.ExitUsage || !strings.Contains(errOut, `-o "yaml"`) {
		t.Errorf("-o yaml: exit %d, stderr %q", code, errOut)
	}
	code, _, _ = run(t, "check", "--no-such-flag")
	if code != cli.ExitUsage {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}
