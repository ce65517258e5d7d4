package credentials_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
)

// A credential script that fails (its provider throttles, its role is
// gone) must not run again at every lookup: any tenant that an entry admits
// could otherwise make it run once per admission (the AWS CLI costs seconds
// of CPU a run, and every run adds to the provider's throttling).
// Only a refused credential was rate limited (Invalidate); a failed fetch was
// remembered nowhere.
func TestAFailingScriptRunsAtMostOncePerFailureHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "runs")
		path := credtest.Script(t, fmt.Sprintf("echo run >> %s\necho throttled >&2\nexit 3", log))
		runs := func() int {
			b, _ := os.ReadFile(log)
			return strings.Count(string(b), "run")
		}
		c := credentials.New(credentials.WithFailureHold(300 * time.Millisecond))
		src := credtest.Source(t, "ext:"+path)
		opts := credentials.FetchOptions{Host: "r.example", Timeout: 5 * time.Second}
		for i := range 5 {
			_, err := c.Get(ctx(t), src, opts)
			if err == nil || !strings.Contains(err.Error(), "exit 3") {
				t.Fatalf("fetch %d: err = %v, want the script's failure (exit 3)", i, err)
			}
		}
		if n := runs(); n != 1 {
			t.Fatalf("a failing script ran %d times for 5 fetches within the hold, want 1", n)
		}
		time.Sleep(400 * time.Millisecond)
		_, _ = c.Get(ctx(t), src, opts)
		if n := runs(); n != 2 {
			t.Fatalf("runs after the hold = %d, want 2", n)
		}
	})
}
