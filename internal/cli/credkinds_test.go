package cli_test

import (
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/internal/cli"
)

// check accepts the credential kinds that take no parameter written without
// a colon, as the docs write them, and names them as written.
func TestCheckAcceptsCredentialKindsWithoutAColon(t *testing.T) {
	for _, tc := range []struct{ name, apiURL, credentials, want string }{
		{"aws", "https://000000000000.dkr.ecr.eu-west-1.amazonaws.com", "aws", "credentials: aws: aws"},
		{"aws quoted with its colon", "https://000000000000.dkr.ecr.eu-west-1.amazonaws.com", `"aws:"`, "credentials: aws: aws"},
		{"aws with a region", "https://mirror.example", "aws:region=eu-west-1", "credentials: aws: aws:region=eu-west-1"},
		{"gcp", "https://europe-docker.pkg.dev", "gcp", "credentials: gcp: gcp"},
		{"azure", "https://team.azurecr.io", "azure", "credentials: azure: azure"},
		{"imagepullsecrets", "https://ghcr.io", "imagepullsecrets", "credentials: imagepullsecrets: the auths entry for ghcr.io"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, "registries:\n- name: r\n  api_url: "+tc.apiURL+"\n  prefix: r.example\n  credentials: "+tc.credentials+"\n")
			code, out, errOut := run(t, "check", "--config", cfg)
			if code != cli.ExitOK || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want 0 and %q; stdout:\n%s\nstderr:\n%s", code, tc.want, out, errOut)
			}
		})
	}
}
