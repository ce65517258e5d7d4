package imageref_test

import (
	"testing"

	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

func TestParseImageKeepsTheImageAsWritten(t *testing.T) {
	tests := []struct{ in, repo, tag, digest string }{
		{"nginx", "nginx", "", ""},
		{"nginx:1.25", "nginx", "1.25", ""},
		{"localhost:5000/a/b:v1", "localhost:5000/a/b", "v1", ""},
		{"ghcr.io/a/b:v1@sha256:" + sixtyFour, "ghcr.io/a/b", "v1", "sha256:" + sixtyFour},
		{"ghcr.io/a/b@sha256:" + sixtyFour, "ghcr.io/a/b", "", "sha256:" + sixtyFour},
	}
	for _, tc := range tests {
		img, err := imageref.ParseImage(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if img.Repo != tc.repo || img.Tag != tc.tag || img.Digest != tc.digest {
			t.Errorf("%s: %+v", tc.in, img)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a:b:c", "ghcr.io/a@sha256:short"} {
		if _, err := imageref.ParseImage(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
