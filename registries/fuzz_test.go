package registries_test

import (
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/registries"
)

// FuzzParseImage: a parsed image puts its parts back together as written.
func FuzzParseImage(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.25", "library/nginx", "docker.io/nginx", "index.docker.io/library/nginx:1",
		"127.0.0.1:5000/x/y:v1", "ghcr.io/a/b:v1@sha256:" + sixtyFour, "localhost/x", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		img, err := registries.ParseImage(ref)
		if err != nil {
			return
		}
		back := img.Repo
		if img.Tag != "" {
			back += ":" + img.Tag
		}
		if img.Digest != "" {
			back += "@" + img.Digest
		}
		if back != ref {
			t.Fatalf("%q came back as %q", ref, back)
		}
		_ = img.Canonical()
	})
}

// FuzzCredentialOutput: what a script prints gives credentials or an error
// that does not repeat it.
func FuzzCredentialOutput(f *testing.F) {
	for _, s := range []string{"AWS:token\n", "user:pass\r\n", "token", "", ":x", "a\nb", "u:p:q"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		_, err := registries.ParseCredentialOutput(out)
		if err != nil && len(out) > 3 && strings.Contains(err.Error(), string(out)) {
			t.Fatalf("the error repeats the output: %v", err)
		}
	})
}
