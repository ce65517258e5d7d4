package registries_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
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
			head := headVia(t, srv, credentials.New(), login)
			if err := head("app"); err != nil {
				t.Fatal(err)
			}
			// The password rotates: the registry refuses the cached one.
			srv.SetPassword("new")
			srv.RevokeTokens()
			if err := os.WriteFile(pwFile, []byte("new"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := head("app"); err != nil {
				t.Fatalf("after rotation: %v", err)
			}
			b, _ := os.ReadFile(pwFile + ".runs")
			if n := len(b) / len("run\n"); n != 2 {
				t.Errorf("script runs = %d, want 2 (one per credential)", n)
			}
		})
	}
}
