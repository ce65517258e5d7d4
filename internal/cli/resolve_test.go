package cli_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/internal/cli"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

const (
	pass      = "cli-Pa55-never-printed"
	wrongPass = "cli-wr0ng-never-printed"
)

// registry serves team/api in four versions behind Basic auth, with a
// config whose entries cover the cases below.
func registry(t *testing.T) (*registrytest.Server, string) {
	t.Helper()
	srv := registrytest.New(t, registrytest.WithBasic("u", pass))
	for _, tag := range []string{"1.4.0", "1.4.7", "1.5.0", "2.0.0-rc1"} {
		srv.PushImage(t, "team/api:"+tag)
		srv.PushImage(t, "restricted/api:"+tag)
		srv.PushImage(t, "wrong/api:"+tag)
		srv.PushImage(t, "ruled/api:"+tag)
	}
	t.Setenv("CLI_TEST_CREDS", "u:"+pass)
	t.Setenv("CLI_WRONG_CREDS", "u:"+wrongPass)
	doc := fmt.Sprintf(`registries:
- name: team
  api_url: %[1]s
  prefix: %[2]s/team
  credentials: env:CLI_TEST_CREDS
- name: restricted
  api_url: %[1]s
  prefix: %[2]s/restricted
  credentials: env:CLI_TEST_CREDS
  namespaces: ["team-*"]
- name: ruled
  api_url: %[1]s
  prefix: %[2]s/ruled
  credentials: env:CLI_TEST_CREDS
- name: wrong
  api_url: %[1]s
  prefix: %[2]s/wrong
  credentials: env:CLI_WRONG_CREDS
  on_error: fail
policy:
  images:
  - prefix: %[2]s/ruled
    constraint: "~1.4"
`, srv.URL, srv.Host)
	return srv, writeConfig(t, doc)
}

func noSecrets(t *testing.T, outs ...string) {
	t.Helper()
	for _, o := range outs {
		if strings.Contains(o, pass) || strings.Contains(o, wrongPass) {
			t.Errorf("the output holds a password:\n%s", o)
		}
	}
}

func TestResolvePrintsTheEntryIdentityCandidatesChoiceAndPin(t *testing.T) {
	srv, cfg := registry(t)
	code, out, errOut := run(t, "resolve", "--config", cfg, "--constraint", "~1.4", srv.Host+"/team/api:1.4")
	noSecrets(t, out, errOut)
	if code != cli.ExitOK {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Log("\n" + out)
	for _, want := range []string{
		"namespace default, config " + cfg,
		"entry:       team (prefix " + srv.Host + "/team, api_url " + srv.URL + ")",
		"credentials: env (env:CLI_TEST_CREDS), as user u",
		`policy:      strategy semver, constraint "~1.4"`,
		"candidates:  4 of 4 listed tags pass allow_tags and ignore_tags: 1.4.0, 1.4.7, 1.5.0, 2.0.0-rc1",
		"chose:       1.4.7",
		"pinned:      " + srv.Host + "/team/api:1.4.7@sha256:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

type jsonReport struct {
	Namespace string
	Images    []struct {
		Image string
		Entry *struct {
			Name        string
			Credentials *struct{ Kind, Source, Identity string }
		}
		Policy *struct {
			Strategy, Constraint string
			IgnoreTags           []string `json:"ignore_tags"`
		}
		Listed     *int
		Candidates []string
		Tag        string
		Pinned     string
		LeftAlone  string `json:"left_alone"`
		Error      string
	}
}

func resolveJSON(t *testing.T, wantCode int, args ...string) jsonReport {
	t.Helper()
	code, out, errOut := run(t, append([]string{"resolve", "-o", "json"}, args...)...)
	noSecrets(t, out, errOut)
	if code != wantCode {
		t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, wantCode, out, errOut)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in:\n%s", err, out)
	}
	return rep
}

func TestResolveDecidesAsAnAdmissionInTheNamespaceWould(t *testing.T) {
	srv, cfg := registry(t)
	h := srv.Host
	tests := []struct {
		name      string
		args      []string
		wantTag   string // "" when nothing is pinned
		wantLeft  string
		wantError string
		wantCode  int
	}{
		{name: "the digest strategy pins the tag as written", args: []string{h + "/team/api:1.5.0"}, wantTag: "1.5.0"},
		{name: "a policy.images rule applies", args: []string{h + "/ruled/api"}, wantTag: "1.4.7"},
		{name: "flags override the rule, as annotations do", args: []string{"--constraint", "^1", h + "/ruled/api"}, wantTag: "1.5.0"},
		{name: "--ignore-tags filters the candidates", args: []string{"--constraint", ">=1", "--ignore-tags", "1.5*", h + "/team/api"}, wantTag: "1.4.7"},
		{name: "--allow-tags filters the candidates", args: []string{"--strategy", "alphabetical", "--allow-tags", "regexp:^1\\.4", h + "/team/api"}, wantTag: "1.4.7"},
		{name: "a pre-release is chosen only when the constraint names one", args: []string{"--constraint", ">=2.0.0-0", h + "/team/api"}, wantTag: "2.0.0-rc1"},
		{name: "an entry limited to other namespaces leaves the image alone", args: []string{h + "/restricted/api:1.4.0"}, wantLeft: `entry "restricted" has its prefix but admits only the namespaces team-*, not default`},
		{name: "the same entry serves its namespaces", args: []string{"--namespace", "team-a", h + "/restricted/api:1.4.0"}, wantTag: "1.4.0"},
		{name: "an image of no entry is left alone", args: []string{"nginx:1.27"}, wantLeft: "no entry of the config matches it (as docker.io/library/nginx)"},
		{name: "an image with a digest is left alone", args: []string{h + "/team/api@sha256:" + strings.Repeat("a", 64)}, wantLeft: "already carries a digest"},
		{name: "--strategy skip leaves the image alone", args: []string{"--strategy", "skip", h + "/team/api:1.4.0"}, wantLeft: "changes nothing"},
		{name: "refused credentials are an error", args: []string{h + "/wrong/api:1.4.0"}, wantError: "401", wantCode: cli.ExitFail},
		{name: "no tag meeting the constraint is an error", args: []string{"--constraint", "~9", h + "/team/api"}, wantError: `"~9"`, wantCode: cli.ExitFail},
		{name: "a malformed flag is denied as its annotation would be", args: []string{"--constraint", "~~1", h + "/team/api"}, wantError: "annotation image-pin.io/constraint", wantCode: cli.ExitFail},
		{name: "a malformed image is an error", args: []string{"Not A/Reference"}, wantError: "image reference", wantCode: cli.ExitFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := resolveJSON(t, tc.wantCode, append([]string{"--config", cfg}, tc.args...)...)
			if len(rep.Images) != 1 {
				t.Fatalf("images = %+v", rep.Images)
			}
			r := rep.Images[0]
			switch {
			case tc.wantTag != "":
				if r.Tag != tc.wantTag || !strings.Contains(r.Pinned, ":"+tc.wantTag+"@sha256:") || r.Error != "" {
					t.Errorf("tag %q pinned %q error %q, want %s pinned", r.Tag, r.Pinned, r.Error, tc.wantTag)
				}
			case tc.wantLeft != "":
				if r.Pinned != "" || !strings.Contains(r.LeftAlone, tc.wantLeft) {
					t.Errorf("pinned %q left_alone %q, want it left alone: %q", r.Pinned, r.LeftAlone, tc.wantLeft)
				}
			default:
				if r.Pinned != "" || !strings.Contains(r.Error, tc.wantError) {
					t.Errorf("pinned %q error %q, want an error naming %q", r.Pinned, r.Error, tc.wantError)
				}
			}
		})
	}
}

func TestResolveReportsEveryImageAndFailsWhenOneFails(t *testing.T) {
	srv, cfg := registry(t)
	rep := resolveJSON(t, cli.ExitFail, "--config", cfg, "--namespace", "team-a", "--constraint", ">=1 <2", "--ignore-tags", "1.4.0",
		srv.Host+"/team/api", srv.Host+"/wrong/api", srv.Host+"/restricted/api")
	if rep.Namespace != "team-a" || len(rep.Images) != 3 {
		t.Fatalf("report = %+v", rep)
	}
	ok, wrong, restricted := rep.Images[0], rep.Images[1], rep.Images[2]
	if ok.Tag != "1.5.0" || ok.Listed == nil || *ok.Listed != 4 || strings.Join(ok.Candidates, ",") != "1.4.7,1.5.0,2.0.0-rc1" {
		t.Errorf("first image: %+v", ok)
	}
	if ok.Policy == nil || ok.Policy.Strategy != "semver" || ok.Policy.Constraint != ">=1 <2" || strings.Join(ok.Policy.IgnoreTags, ",") != "1.4.0" {
		t.Errorf("first image's policy: %+v", ok.Policy)
	}
	if c := ok.Entry.Credentials; c == nil || c.Kind != "env" || c.Source != "env:CLI_TEST_CREDS" || c.Identity != "user u" {
		t.Errorf("first image's credentials: %+v", c)
	}
	if wrong.Error == "" || wrong.Pinned != "" || wrong.Entry == nil || wrong.Entry.Name != "wrong" {
		t.Errorf("second image: %+v", wrong)
	}
	if restricted.Tag != "1.5.0" || restricted.Entry.Name != "restricted" {
		t.Errorf("third image: %+v", restricted)
	}
}

func TestResolveReadsSecretsOnlyThroughAKubeconfig(t *testing.T) {
	srv, _ := registry(t)
	cfg := writeConfig(t, fmt.Sprintf("registries:\n- name: ghcr-style\n  api_url: %s\n  prefix: %s\n  credentials: secret:argocd/ghcr-secret#token\n", srv.URL, srv.Host))
	missing := filepath.Join(t.TempDir(), "no-kubeconfig")
	rep := resolveJSON(t, cli.ExitFail, "--config", cfg, "--kubeconfig", missing, srv.Host+"/team/api:1.4.0")
	if r := rep.Images[0]; !strings.Contains(r.Error, "kubeconfig") || !strings.Contains(r.Error, "secret:argocd/ghcr-secret#token") {
		t.Errorf("error = %q, want one naming the source and the kubeconfig", r.Error)
	}
	// An entry whose credentials need no Secret needs no cluster at all.
	anon := writeConfig(t, fmt.Sprintf("registries:\n- name: env-only\n  api_url: %s\n  prefix: %s\n  credentials: env:CLI_TEST_CREDS\n", srv.URL, srv.Host))
	t.Setenv("KUBECONFIG", missing)
	if rep := resolveJSON(t, cli.ExitOK, "--config", anon, srv.Host+"/team/api:1.4.0"); rep.Images[0].Pinned == "" {
		t.Errorf("not pinned: %+v", rep.Images[0])
	}
}

func TestResolveWithoutImagesOrWithABadConfigSaysSo(t *testing.T) {
	code, _, errOut := run(t, "resolve", "--config", "testdata/seed.yaml")
	if code != cli.ExitUsage || !strings.Contains(errOut, "name at least one image") {
		t.Errorf("no image: exit %d, stderr %q", code, errOut)
	}
	bad := writeConfig(t, "registries:\n- name: r\n  prefix: r.example\n")
	code, out, errOut := run(t, "resolve", "--config", bad, "r.example/app")
	if code != cli.ExitFail || out != "" || !strings.Contains(errOut, `registries[0] "r": api_url: must be set`) {
		t.Errorf("bad config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// docker.io/nginx names the official image as an entry's prefix (Set.Match
// reads it so): when that entry does not admit the namespace, resolve says
// so rather than that no entry matches.
func TestResolveNamesTheEntryOfAnOfficialImageThatAdmitsOtherNamespaces(t *testing.T) {
	cfg := writeConfig(t, `registries:
- name: hub
  api_url: https://registry-1.docker.io
  prefix: docker.io/nginx
  namespaces: ["team-*"]
`)
	rep := resolveJSON(t, 0, "--config", cfg, "nginx:1.27")
	if len(rep.Images) != 1 {
		t.Fatalf("images = %+v", rep.Images)
	}
	want := `entry "hub" has its prefix but admits only the namespaces team-*, not default`
	if r := rep.Images[0]; r.Pinned != "" || !strings.Contains(r.LeftAlone, want) {
		t.Errorf("pinned %q left_alone %q, want it left alone: %q", r.Pinned, r.LeftAlone, want)
	}
}
