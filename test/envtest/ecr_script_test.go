package envtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// The seed's ECR entry and script, as written, in the built binary at its
// default log level, on a PATH without the AWS CLI (the slim image): the
// tenant's warning says only that the script printed nothing; the
// operator's log says, at the default level, the exit status and the
// shell's "aws: not found".
func TestWithoutTheAWSCLITheSeedsECRScriptTellsTheOperatorWhyAtTheDefaultLogLevel(t *testing.T) {
	t.Parallel()
	optInNamed(t, "team-a")
	script := credtest.SeedECRScriptFile(t)
	p := startProcess(t, fmt.Sprintf(`registries:
  - name: ECR
    api_url: http://%[1]s
    prefix: %[1]s/ecr
    ping: yes
    insecure: false
    credentials: ext:%[2]s
    credsexpire: 10h
`, s.tokenReg.Host, script), cluster.WebhookOptions{Kubeconfig: s.kubecfg, Env: []string{"PATH=" + credtest.SystemPath}})
	r, _ := p.post(t, review("team-a", "Pod", "CREATE", s.tokenReg.Host+"/ecr/app:1"))
	tenant := "credentials from ext:" + script + ": empty (the script must print one line user:pass)"
	warnings := strings.Join(r.Warnings, "\n")
	if !r.Allowed || !strings.Contains(warnings, tenant) || strings.Contains(warnings, "not found") {
		t.Errorf("the tenant reads allowed=%v %q, want a warning %q without the script's stderr", r.Allowed, warnings, tenant)
	}
	var line string
	for _, l := range strings.Split(p.waitForLog(t, "credential script failed"), "\n") {
		if strings.Contains(l, "credential script failed") {
			line = l
		}
	}
	t.Logf("the operator reads: %s", line)
	for _, want := range []string{`"exit":0`, `"stderr":"` + script + `: 2: aws: not found"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the log line at the default level lacks %s:\n%s", want, p.out.String())
		}
	}
}
