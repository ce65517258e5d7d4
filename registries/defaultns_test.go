package registries_test

import (
	"testing"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// As in Argo CD Image Updater, an entry's defaultns names the namespace of
// any image of that registry written with a one-segment path, not only of
// Docker Hub images; Docker Hub's is library unless set.
func TestDefaultNSAppliesToOneSegmentImagesOfEveryRegistry(t *testing.T) {
	set, err := registries.NewSet([]*registries.Entry{
		entry(t, "team", "https://reg.example", "reg.example", func(e *registries.Entry) { e.DefaultNS = "team" }),
		entry(t, "plain", "https://plain.example", "plain.example"),
		entry(t, "hub", "https://registry-1.docker.io", "docker.io"),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ image, wantRepo string }{
		{"reg.example/app:1", "team/app"},
		{"reg.example/other/app:1", "other/app"},
		{"plain.example/app:1", "app"},
		{"nginx", "library/nginx"},
		{"bitnami/redis", "bitnami/redis"},
	}
	for _, tc := range tests {
		img, _ := imageref.ParseImage(tc.image)
		tgt, ok := set.Match(img, "default")
		if !ok || tgt.Repository != tc.wantRepo {
			t.Errorf("%s: looked up as %q, want %q", tc.image, tgt.Repository, tc.wantRepo)
		}
	}
}
