package envtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// cli runs the built binary's subcommand as a user would and returns its
// exit code, stdout and stderr; it fails the test if a credential shows.
func cli(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Getenv("IMAGE_PIN_WEBHOOK_BIN"), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{stdout.String(), stderr.String()} {
		if strings.Contains(o, regPass) || strings.Contains(o, wrongPass) {
			t.Errorf("%v printed a credential", args)
		}
	}
	return code, stdout.String(), stderr.String()
}

func TestCheckAcceptsTheSeedsAndTheSuitesConfigsAndRefusesABrokenOne(t *testing.T) {
	t.Parallel()
	seed := filepath.Join(t.TempDir(), "seed.yaml")
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(seed, []byte(seedConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, []byte("registries:\n- name: ECR\n  api_url: https://x.example\n  prefix: x.example\n  credsexpire: 10 hours\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, nil, "check", "--config", seed)
	if code != 0 || !strings.Contains(out, "ext: what the script /scripts/login.sh prints") || !strings.Contains(out, `key "token" of Secret argocd/ghcr-secret`) {
		t.Errorf("seed: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, nil, "check", "--config", s.config)
	if code != 0 || !strings.Contains(out, "pullsecret: the auths entry for "+s.tlsReg.Host+" in pull Secret creds/pull") {
		t.Errorf("the suite's config: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, nil, "check", "--config", broken)
	if code != 1 || out != "" || !strings.Contains(errOut, broken) || !strings.Contains(errOut, `registries[0] "ECR"`) || !strings.Contains(errOut, "credsexpire") {
		t.Errorf("broken: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// A semver lookup over HTTPS on 127.0.0.1 (distribution's registry, Basic
// auth) whose tag list takes two pages, by the webhook and by resolve with
// the seed's secret: credentials read through the kubeconfig.
func TestASemverLookupOverHTTPSByIPFollowsTagPagesInTheWebhookAndInResolve(t *testing.T) {
	t.Parallel()
	repo := "secret/" + uniq("paged")
	push(t, s.tlsReg, repo+":0.0.1")
	desc, err := s.tlsReg.Get(repo + ":0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// 1,001 tags: two pages of at most 1,000. The newest sorts last.
	var tags []string
	for i := 1; i <= 1000; i++ {
		tags = append(tags, fmt.Sprintf("1.%d.0", i))
	}
	if err := s.tlsReg.TagOnDisk(repo, desc, tags...); err != nil {
		t.Fatal(err)
	}
	image := s.tlsReg.Host + "/" + repo + ":1.0.0"
	want := fmt.Sprintf("%s/%s:1.1000.0@%s", s.tlsReg.Host, repo, desc.Digest)

	ns := namespace(t, true)
	c, _ := kube(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "paged", Annotations: map[string]string{"image-pin.io/constraint": ">=1"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
	if err := c.Create(ctx(t), pod); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx(t), client.ObjectKeyFromObject(pod), pod); err != nil {
		t.Fatal(err)
	}
	if got := pod.Spec.Containers[0].Image; got != want {
		t.Errorf("the webhook stored %q, want %q", got, want)
	}

	code, out, errOut := cli(t, nil, "resolve", "--config", s.config, "--kubeconfig", filepath.Join(s.dir, "kubeconfig"),
		"--namespace", ns, "--constraint", ">=1", "-o", "json", image)
	if code != 0 {
		t.Fatalf("resolve: exit %d\n%s%s", code, out, errOut)
	}
	var rep struct {
		Images []struct {
			Entry struct {
				Name        string
				Credentials struct{ Kind, Source, Identity string }
			}
			Listed     int
			Candidates []string
			Tag        string
			Pinned     string
			Error      string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Images) != 1 {
		t.Fatalf("%v: %s", err, out)
	}
	r := rep.Images[0]
	if r.Pinned != want || r.Tag != "1.1000.0" || r.Listed != 1001 || len(r.Candidates) != 1001 {
		t.Errorf("resolve: pinned %q tag %q listed %d candidates %d error %q; want %s of 1,001 tags", r.Pinned, r.Tag, r.Listed, len(r.Candidates), r.Error, want)
	}
	if cr := r.Entry.Credentials; r.Entry.Name != "ghcr-style secret" || cr.Kind != "secret" || cr.Source != "secret:creds/ghcr-secret#token" || cr.Identity != "user "+regUser {
		t.Errorf("resolve: entry %q credentials %+v", r.Entry.Name, cr)
	}
}

// The built binary, as a user mistypes it: nothing here may start a server
// (the command would then not return, and the test would hang until killed).
func TestTheBinarysCommandLineRefusesMistakesAndAnswersHelpAndVersion(t *testing.T) {
	t.Parallel()
	every := []string{"check", "resolve", "doctor", "drift", "version", "help"}
	tests := []struct {
		name         string
		args         []string
		code         int
		stdout, errs []string
	}{
		{"a misspelt subcommand exits 2 with every subcommand", []string{"chek", "--config", "x"}, 2, nil, append([]string{`unknown subcommand "chek"`}, every...)},
		{"an argument after the server flags exits 2", []string{"--port", "9443", "chek"}, 2, nil, []string{`unexpected argument "chek"`}},
		{"version prints the version and the Go version", []string{"version"}, 0, []string{"image-pin-webhook ", " (go1."}, nil},
		{"--version does the same", []string{"--version"}, 0, []string{" (go1."}, nil},
		{"help lists the subcommands and the server flags", []string{"help"}, 0, append([]string{"Server flags:", "-cert-secret", "-client-cert-name"}, every...), nil},
		{"--help does the same", []string{"--help"}, 0, append([]string{"Server flags:"}, every...), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, nil, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.errs {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}
