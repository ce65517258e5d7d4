package credentials_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestEverySourceGivesItsUserAndPassword(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(
		credtest.Secret("argocd", "ghcr-secret", map[string]string{"token": "user_name:" + credtest.SecretValue + "\n"}),
		credtest.Secret("ci", "hub", credtest.DockerConfig(`"https://index.docker.io/v1/":{"auth":"`+credtest.B64("hubuser:"+credtest.SecretValue)+`"}`)),
		credtest.Secret("ci", "ghcr", credtest.DockerConfig(`"ghcr.io":{"username":"ghuser","password":"`+credtest.SecretValue+`"}`)),
		credtest.Secret("ci", "scheme", credtest.DockerConfig(`"https://quay.io/v2/":{"auth":"`+credtest.B64("quser:"+credtest.SecretValue)+`"}`)),
	).Build()
	tests := []struct {
		name, src, host, user string
	}{
		{"env: holds user:pass", "env:REG_CREDS", "x.io", "envuser"},
		{"secret: reads user:pass from the key, as the seed's GHCR secret", "secret:argocd/ghcr-secret#token", "ghcr.io", "user_name"},
		{"pullsecret: matches Docker Hub under any of its names", "pullsecret:ci/hub", "registry-1.docker.io", "hubuser"},
		{"pullsecret: matches docker.io itself", "pullsecret:ci/hub", "docker.io", "hubuser"},
		{"pullsecret: accepts username and password fields", "pullsecret:ci/ghcr", "ghcr.io", "ghuser"},
		{"pullsecret: ignores a scheme and path in the auths key", "pullsecret:ci/scheme", "quay.io", "quser"},
		{"ext: reads one line from the script", "ext:" + credtest.Script(t, "echo 'AWS:"+credtest.SecretValue+"'"), "x.io", "AWS"},
		{"ext: trims a CRLF", "ext:" + credtest.Script(t, `printf 'AWS:`+credtest.SecretValue+`\r\n'`), "x.io", "AWS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := credentials.New(credentials.WithSecretReader(reader), credentials.WithEnvironment([]string{"REG_CREDS=envuser:" + credtest.SecretValue}))
			got, err := c.Get(ctx(t), credtest.Source(t, tc.src), credentials.FetchOptions{Host: tc.host, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if got.Username != tc.user || got.Password != credtest.SecretValue {
				t.Errorf("got user %q (password matches: %v)", got.Username, got.Password == credtest.SecretValue)
			}
		})
	}
}

func TestEverySourceFailsWithoutPrintingTheCredential(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(
		credtest.Secret("ns", "nokey", map[string]string{"other": credtest.SecretValue}),
		credtest.Secret("ns", "multiline", map[string]string{"token": "user:" + credtest.SecretValue + "\nmore"}),
		credtest.Secret("ns", "pull-other-host", credtest.DockerConfig(`"ghcr.io":{"auth":"`+credtest.B64("u:"+credtest.SecretValue)+`"}`)),
		credtest.Secret("ns", "pull-bad-b64", credtest.DockerConfig(`"x.io":{"auth":"`+credtest.SecretValue+`!!"}`)),
		credtest.Secret("ns", "pull-bad-json", map[string]string{corev1.DockerConfigJsonKey: `{"auths": "` + credtest.SecretValue}),
	).Build()
	tests := []struct {
		name, src, want string
	}{
		{"an unset variable", "env:UNSET", "not set"},
		{"a variable with an empty user", "env:NOUSER", "empty user"},
		{"a missing secret", "secret:ns/absent#token", "reading the secret"},
		{"a missing key", "secret:ns/nokey#token", `no key "token"`},
		{"a value of two lines", "secret:ns/multiline#token", "more than one line"},
		{"a pull secret for another host", "pullsecret:ns/pull-other-host", `no auths entry for "x.io"`},
		{"a pull secret whose auth is not base64", "pullsecret:ns/pull-bad-b64", "not base64"},
		{"a pull secret that is not JSON", "pullsecret:ns/pull-bad-json", "not valid JSON"},
		{"a script that fails", "ext:" + credtest.Script(t, "echo 'denied for token u:"+credtest.SecretValue+"' >&2; echo 'u:"+credtest.SecretValue+"'; exit 3"), "the credential script failed (exit 3)"},
		{"a script that prints nothing", "ext:" + credtest.Script(t, "true"), "empty"},
		{"a script that does not exist", "ext:/nonexistent/login.sh", "could not be started"},
		{"a script that prints without end", "ext:" + credtest.Script(t, "yes u:"+credtest.SecretValue+" | head -c 200000"), "more than 64 KiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := credentials.New(credentials.WithSecretReader(reader), credentials.WithEnvironment([]string{"NOUSER=:" + credtest.SecretValue}))
			_, err := c.Get(ctx(t), credtest.Source(t, tc.src), credentials.FetchOptions{Host: "x.io", Timeout: 5 * time.Second})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), credtest.SecretValue) {
				t.Errorf("error prints the credential: %q", err)
			}
		})
	}
}

// On synctest's clock: the window is exact, whatever the machine's speed
// (the script itself runs in real time, which the fake clock does not count).
func TestAScriptRunsOncePerCredsExpireWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path, runs := credtest.CountingScript(t, "0")
		c := credentials.New()
		src := credtest.Source(t, "ext:"+path)
		opts := credentials.FetchOptions{Expire: 300 * time.Millisecond, Timeout: 5 * time.Second}
		for range 3 {
			if _, err := c.Get(ctx(t), src, opts); err != nil {
				t.Fatal(err)
			}
		}
		if n := runs(); n != 1 {
			t.Fatalf("runs within the window = %d, want 1", n)
		}
		time.Sleep(400 * time.Millisecond)
		if _, err := c.Get(ctx(t), src, opts); err != nil {
			t.Fatal(err)
		}
		if n := runs(); n != 2 {
			t.Fatalf("runs after the window = %d, want 2", n)
		}
	})
}

func TestConcurrentFetchesOfOneSourceRunTheScriptOnce(t *testing.T) {
	path, runs := credtest.CountingScript(t, "0.3")
	c := credentials.New()
	src := credtest.Source(t, "ext:"+path)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(ctx(t), src, credentials.FetchOptions{Timeout: 5 * time.Second}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := runs(); n != 1 {
		t.Fatalf("runs = %d, want 1", n)
	}
}

func TestAScriptIsKilledAfterCredsTimeout(t *testing.T) {
	// The script's child (sleep) holds stdout open: the kill must reach it too.
	p := credtest.Script(t, "sleep 30; echo u:p")
	c := credentials.New()
	start := time.Now()
	_, err := c.Get(ctx(t), credtest.Source(t, "ext:"+p), credentials.FetchOptions{Timeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
}

func TestAScriptAnswerIsCachedEvenWhenTheCallerStoppedWaiting(t *testing.T) {
	path, runs := credtest.CountingScript(t, "0.3")
	c := credentials.New()
	src := credtest.Source(t, "ext:"+path)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Get(short, src, credentials.FetchOptions{Timeout: 5 * time.Second}); err == nil {
		t.Fatal("a caller that gave up got an answer")
	}
	time.Sleep(500 * time.Millisecond)
	got, err := c.Get(ctx(t), src, credentials.FetchOptions{Timeout: 5 * time.Second})
	if err != nil || got.Password != credtest.SecretValue {
		t.Fatalf("got %v", err)
	}
	if n := runs(); n != 1 {
		t.Errorf("runs = %d, want 1", n)
	}
}

func TestAScriptDoesNotSeeTheVariablesOfEnvCredentials(t *testing.T) {
	p := credtest.Script(t, `if [ -n "$HUB_CREDS" ]; then echo "leak:$HUB_CREDS"; else echo "u:$OTHER"; fi`)
	c := credentials.New(credentials.WithEnvironment([]string{"HUB_CREDS=x:y", "OTHER=kept", "PATH=" + os.Getenv("PATH")}))
	got, err := c.Get(ctx(t), credtest.Source(t, "ext:"+p), credentials.FetchOptions{Timeout: 5 * time.Second, HiddenEnv: []string{"HUB_CREDS"}})
	if err != nil {
		t.Fatal(err)
	}
	if got != (authn.AuthConfig{Username: "u", Password: "kept"}) {
		t.Errorf("the script saw %q:%q", got.Username, got.Password)
	}
}

func TestAValueWithoutAColonIsARegistryToken(t *testing.T) {
	c := credentials.New(credentials.WithEnvironment([]string{"TOKEN=" + credtest.SecretValue}))
	got, err := c.Get(ctx(t), credtest.Source(t, "env:TOKEN"), credentials.FetchOptions{})
	if err != nil || got.RegistryToken != credtest.SecretValue {
		t.Fatalf("got %v", err)
	}
}

func TestSourcesParseAsWritten(t *testing.T) {
	tests := []struct{ in, want string }{
		{"env:VAR", "env:VAR"},
		{"secret:argocd/ghcr-secret#token", "secret:argocd/ghcr-secret#token"},
		{"pullsecret:ns/name", "pullsecret:ns/name"},
		{"ext:/scripts/login.sh", "ext:/scripts/login.sh"},
	}
	for _, tc := range tests {
		if got := credtest.Source(t, tc.in).String(); got != tc.want {
			t.Errorf("%s → %s", tc.in, got)
		}
	}
	for _, bad := range []string{"env:", "secret:ns/name", "secret:name#key", "pullsecret:ns", "ext:relative.sh", "user:" + credtest.SecretValue, "nocolon"} {
		_, err := credentials.ParseSource(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), credtest.SecretValue) {
			t.Errorf("%q: error prints the credential", bad)
		}
	}
	if src, err := credentials.ParseSource("imagepullsecrets"); err != nil || src.Kind != credentials.KindImagePullSecrets || src.String() != "imagepullsecrets" {
		t.Errorf("imagepullsecrets: %+v, %v", src, err)
	}
	if _, err := credentials.ParseSource("imagepullsecrets:team-a/x"); err == nil {
		t.Errorf("imagepullsecrets:team-a/x accepted: the kind takes nothing after it")
	}
}
