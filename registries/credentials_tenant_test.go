package registries_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// headVia heads repo:1 through an entry of srv whose credential comes from
// the script at login.
func headVia(t *testing.T, srv *registrytest.Server, creds *credentials.Cache, login string) func(repo string) error {
	e := entry(t, "test", srv.URL, srv.Host, func(e *registries.Entry) {
		e.Credentials = source(t, "ext:"+login)
		e.CredsExpire = time.Hour
	})
	set, err := registries.NewSet([]*registries.Entry{e}, registries.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	return func(r string) error {
		img, _ := imageref.ParseImage(srv.Host + "/" + r + ":1")
		tgt, _ := set.Match(img, "default")
		repo, _ := tgt.Client.Repository(tgt.Repository)
		return tgt.Do(ctx(t), repo, func(rt http.RoundTripper) error {
			_, err := remote.Head(repo.Tag("1"), remote.WithTransport(rt), remote.WithContext(ctx(t)))
			return err
		})
	}
}

func TestForbiddenRepositoriesNeverMakeTheScriptRunAgain(t *testing.T) {
	for _, auth := range []struct {
		name string
		opt  func(u, p string) registrytest.Option
	}{{"basic", registrytest.WithBasic}, {"bearer", registrytest.WithBearer}} {
		t.Run(auth.name, func(t *testing.T) {
			srv := registrytest.New(t, auth.opt("u", credtest.SecretValue))
			srv.PushImage(t, "app:1")
			srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasPrefix(r.URL.Path, "/v2/forbidden/") && r.Header.Get("Authorization") != "" {
					http.Error(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`, http.StatusForbidden)
					return true
				}
				return false
			})
			login, runs := credtest.CountingScript(t, "0")
			head := headVia(t, srv, credentials.New(), login)
			for i := 0; i < 20; i++ {
				if err := head("forbidden"); err == nil {
					t.Fatal("a forbidden repository was read")
				}
			}
			if err := head("app"); err != nil {
				t.Fatal(err)
			}
			if n := runs(); n != 1 {
				t.Errorf("the script ran %d times, want 1: a 403 is not a refused credential", n)
			}
		})
	}
}

func TestARefusedCredentialIsFetchedAgainAtMostOncePerInterval(t *testing.T) {
	srv := registrytest.New(t, registrytest.WithBearer("u", "right"))
	srv.PushImage(t, "app:1")
	login, runs := credtest.CountingScript(t, "0") // prints u:<credtest.SecretValue>, which the registry refuses
	head := headVia(t, srv, credentials.New(credentials.WithRefetchInterval(time.Hour)), login)
	for i := 0; i < 20; i++ {
		if err := head("app"); err == nil {
			t.Fatal("a wrong credential was accepted")
		}
	}
	if n := runs(); n != 2 {
		t.Errorf("the script ran %d times, want 2 (the first fetch and one re-fetch per interval)", n)
	}
}

func TestScriptStderrReachesOnlyTheLogRedactedNeverTheTenant(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		logged = append(logged, args)
		mu.Unlock()
	}, funcr.Options{Verbosity: 1})
	c := credentials.New(credentials.WithLogger(log))
	src := credtest.Source(t, "ext:"+credtest.Script(t, "set -x; echo \"+ curl -u admin:"+credtest.SecretValue+"\" >&2; echo \"Authorization: Bearer "+credtest.SecretValue+"\" >&2; exit 7"))
	_, err := get(ctx(t), c, src, credentials.FetchOptions{Timeout: 5 * time.Second})
	if err == nil || !strings.HasSuffix(err.Error(), "the credential script failed (exit 7)") {
		t.Fatalf("err = %v, want it to end in: the credential script failed (exit 7)", err)
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(logged, "\n")
	if !strings.Contains(all, "credential script stderr") || !strings.Contains(all, "curl -u admin:[redacted]") {
		t.Errorf("the debug log lacks the redacted stderr: %s", all)
	}
	if strings.Contains(all, credtest.SecretValue) || strings.Contains(err.Error(), credtest.SecretValue) {
		t.Errorf("the secret leaked: log %q, error %q", all, err)
	}
}

func TestAScriptsChildrenAreKilledAndReapedWhenItExits(t *testing.T) {
	if err := credentials.BecomeSubreaper(); err != nil {
		t.Skipf("prctl: %v", err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	src := credtest.Source(t, "ext:"+credtest.Script(t, "sleep 60 & echo $! > "+pidFile+"; echo u:p"))
	if _, err := get(ctx(t), credentials.New(), src, credentials.FetchOptions{Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		t.Errorf("the script's child %d outlived it (killed and reaped it must be gone): %s", pid, st)
	}
}
