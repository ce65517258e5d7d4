package imageref_test

import (
	"testing"

	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// FuzzParseImage: a parsed image puts its parts back together as written.
func FuzzParseImage(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.25", "library/nginx", "docker.io/nginx", "index.docker.io/library/nginx:1",
		"127.0.0.1:5000/x/y:v1", "ghcr.io/a/b:v1@sha256:" + sixtyFour, "localhost/x", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		img, err := imageref.ParseImage(ref)
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
