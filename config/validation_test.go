package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
)

// A file with many mistakes gets them all at once, one line each, every line
// naming the file, the entry and the field, none repeating the credentials.
func TestEveryErrorOfAConfigIsReportedAtOnceEachOnALineNamingFileEntryAndField(t *testing.T) {
	doc := `registries:
  - name: ECR
    api_url: ftp://x.example
    prefix: x.example
    credsexpire: 10x
    on_error: panic
    credentials: vault:supersecret
  - name: two
    prefix: y.example
    platforms: [amd64]
policy:
  mode: pinn
  images:
    - prefix: x.io/a
      allow_tags: '^v1'
`
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	var invalid *config.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("Load = %v, want an *InvalidError", err)
	}
	want := []string{
		`registries[0] "ECR": credsexpire: line 5: "10x" is not a duration`,
		`registries[0] "ECR": credentials: unknown kind`,
		`registries[0] "ECR": api_url: "ftp://x.example" must start with http://`,
		`registries[0] "ECR": on_error: "panic" must be ignore or fail`,
		`registries[1] "two": api_url: must be set`,
		`registries[1] "two": platforms[0]: "amd64" must be os/arch`,
		`policy: mode: "pinn" must be pin or report`,
		`policy: images[0] "x.io/a": allow_tags:`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), err)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "config "+path+": "+want[i]) {
			t.Errorf("line %d = %q, want it to start with the file then %q", i, l, want[i])
		}
	}
	if strings.Contains(err.Error(), "supersecret") {
		t.Errorf("the error repeats the credentials field: %v", err)
	}
	if len(invalid.Errs) != len(want) || invalid.Errs[0].Field != "registries[0].credsexpire" {
		t.Errorf("field errors %v, want %d starting with registries[0].credsexpire", invalid.Errs, len(want))
	}
}
