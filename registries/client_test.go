package registries_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func TestARefusedCredentialIsDroppedOnceAndFetchedAgain(t *testing.T) {
	for _, auth := range []struct {
		name string
		opt  func(u, p string) registrytest.Option
	}{{"basic", registrytest.WithBasic}, {"bearer", registrytest.WithBearer}} {
		t.Run(auth.name, func(t *testing.T) {
			srv := registrytest.New(t, auth.opt("u", "old"))
			srv.PushImage(t, "app:1")
			pwFile := filepath.Join(t.TempDir(), "pw")
			if err := os.WriteFile(pwFile, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			login := credtest.Script(t, "echo run >> "+pwFile+".runs; echo u:$(cat "+pwFile+")")
			e := entry(t, "test", srv.URL, srv.Host, func(e *registries.Entry) {
				e.Credentials = "ext:" + login
				e.CredsExpire = time.Hour
			})
			set, err := registries.NewSet([]*registries.Entry{e}, registries.WithCredentials(credentials.New()))
			if err != nil {
				t.Fatal(err)
			}
			img, _ := imageref.ParseImage(srv.Host + "/app:1")
			tgt, _ := set.Match(img, "default")
			repo, _ := tgt.Client.Repository(tgt.Repository)
			head := func() error {
				return tgt.Client.Do(ctx(t), repo, func(rt http.RoundTripper) error {
					_, err := remote.Head(repo.Tag("1"), remote.WithTransport(rt), remote.WithContext(ctx(t)))
					return err
				})
			}
			if err := head(); err != nil {
				t.Fatal(err)
			}
			// The password rotates: the registry refuses the cached one.
			srv.SetPassword("new")
			srv.RevokeTokens()
			if err := os.WriteFile(pwFile, []byte("new"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := head(); err != nil {
				t.Fatalf("after rotation: %v", err)
			}
			b, _ := os.ReadFile(pwFile + ".runs")
			if n := len(b) / len("run\n"); n != 2 {
				t.Errorf("script runs = %d, want 2 (one per credential)", n)
			}
		})
	}
}
