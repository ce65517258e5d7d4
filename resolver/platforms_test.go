package resolver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// Platforms compare as containerd compares them: arm64 is arm64/v8, arm is
// arm/v7, and an explicit variant must be there.
func TestPlatformsCompareAsContainerdNormalisesThem(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushIndex(t, "multi:1", "linux/amd64", "linux/arm64", "linux/arm/v7")
	srv.PushIndex(t, "variant:1", "linux/arm64/v8", "linux/amd64/v2")
	tests := []struct {
		repo, platforms, missing string
	}{
		{"multi", "linux/arm64/v8", ""},
		{"multi", "linux/arm64", ""},
		{"multi", "linux/arm", ""},
		{"multi", "linux/arm/v7", ""},
		{"multi", "linux/amd64, linux/arm64/v8", ""},
		{"multi", "linux/arm/v6", "linux/arm/v6"},
		{"multi", "linux/amd64/v2", "linux/amd64/v2"},
		{"variant", "linux/arm64", ""},
		{"variant", "linux/amd64", "linux/amd64"},
		{"variant", "linux/amd64/v2", ""},
	}
	for _, tc := range tests {
		t.Run(tc.repo+" "+tc.platforms, func(t *testing.T) {
			tgt := setup(t, srv, tc.repo, withPlatforms(strings.Split(tc.platforms, ", ")...))
			_, err := resolver.New().Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", digestPolicy()))
			switch {
			case tc.missing == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.missing != "" && (err == nil || !strings.Contains(err.Error(), tc.missing)):
				t.Fatalf("err = %v, want one naming %s", err, tc.missing)
			}
		})
	}
}
