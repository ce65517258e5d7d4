package cli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/internal/cli"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// The seed's ECR entry and login script, as written, against a registry
// that takes the password the token holds: with the AWS CLI on PATH (a
// stand-in printing what the real one prints) resolve pins; without it, it
// shows what the tenant reads (the admission's warning: the script printed
// nothing) and, apart, what the operator's log says (exit status and the
// shell's "aws: not found").
func TestResolveRunsTheSeedsECRScriptAndWithoutTheCLIShowsTheOperatorWhy(t *testing.T) {
	const password = "ecr-" + pass
	srv := registrytest.New(t, registrytest.WithBasic("AWS", password))
	srv.PushImage(t, "team/api:1.0")
	script := credtest.SeedECRScriptFile(t)
	cfg := writeConfig(t, fmt.Sprintf(`registries:
  - name: ECR
    api_url: %s
    prefix: %s
    ping: yes
    insecure: false
    credentials: ext:%s
    credsexpire: 10h
`, srv.URL, srv.Host, script))
	image := srv.Host + "/team/api:1.0"

	t.Run("with the AWS CLI", func(t *testing.T) {
		t.Setenv("PATH", credtest.StandInAWS(t, password))
		code, out, errOut := run(t, "resolve", "--config", cfg, image)
		noSecrets(t, out, errOut)
		if code != cli.ExitOK || !strings.Contains(out, "pinned:      "+image+"@sha256:") || !strings.Contains(out, "as user AWS") {
			t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("without the AWS CLI", func(t *testing.T) {
		t.Setenv("PATH", credtest.SystemPath)
		code, out, errOut := run(t, "resolve", "--config", cfg, image)
		noSecrets(t, out, errOut)
		t.Log("\n" + out)
		tenant := "error:       looking up " + image + ": credentials from ext:" + script + ": empty (the script must print one line user:pass); left as it is"
		operator := "script:      exit 0, empty (the script must print one line user:pass); last line of stderr: " + script + ": 2: aws: not found"
		if code != cli.ExitFail || !strings.Contains(out, tenant+"\n") || !strings.Contains(out, operator+"\n") {
			t.Fatalf("exit %d, want 1, %q and %q; stdout:\n%s\nstderr:\n%s", code, tenant, operator, out, errOut)
		}
		_, js, _ := run(t, "resolve", "--config", cfg, "-o", "json", image)
		var rep struct {
			Images []struct {
				Error         string `json:"error"`
				ScriptFailure string `json:"script_failure"`
			} `json:"images"`
		}
		if err := json.Unmarshal([]byte(js), &rep); err != nil || len(rep.Images) != 1 {
			t.Fatalf("%v: %s", err, js)
		}
		if got := rep.Images[0]; strings.Contains(got.Error, "not found") || !strings.HasSuffix(got.ScriptFailure, "aws: not found") {
			t.Errorf("json: error %q (the tenant's), script_failure %q (the operator's)", got.Error, got.ScriptFailure)
		}
	})
}
