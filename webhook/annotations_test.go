package webhook

import (
	"strings"
	"testing"
)

// The annotation key names the field, so the message says it once, where
// the config file would say "allow_tags:".
func TestAMalformedAnnotationIsNamedByItsKeyAlone(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want string
	}{
		{"an object's", map[string]string{"image-pin.io/allow-tags": "^v1"}, `annotation image-pin.io/allow-tags: "^v1" must be regexp:<expression> or any`},
		{"a container's", map[string]string{"image-pin.io/strategy.app": "newest"}, `annotation image-pin.io/strategy.app: "newest" is not a strategy: use digest, semver, newest-build, alphabetical or skip`},
		{"one beside a good one of its level", map[string]string{"image-pin.io/strategy": "digest", "image-pin.io/ignore-tags": "["}, `annotation image-pin.io/ignore-tags: "[" is not a valid glob`},
		{"a container's the object lacks, malformed all the same", map[string]string{"image-pin.io/constraint.nosuch": "~~1"}, `annotation image-pin.io/constraint.nosuch: "~~1" is not a semver constraint`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAnnotations(tc.ann, map[string]bool{"app": true})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestEachLevelOfAnnotationsImpliesSemverFromItsOwnConstraint(t *testing.T) {
	ov, err := parseAnnotations(map[string]string{
		"image-pin.io/strategy":         "skip",
		"image-pin.io/constraint.app":   "~1.4",
		"image-pin.io/strategy.sidecar": "alphabetical",
		"image-pin.io/constraint.other": "^1",
		"image-pin.io/strategy.other":   "skip",
	}, map[string]bool{"app": true, "sidecar": true, "other": true, "plain": true})
	if err != nil {
		t.Fatal(err)
	}
	strategy := func(name string) string {
		s := ov.forContainer(name)
		switch {
		case s.Skip:
			return "skip"
		case s.Strategy != nil:
			return string(*s.Strategy)
		}
		return ""
	}
	for name, want := range map[string]string{"app": "semver", "sidecar": "alphabetical", "other": "skip", "plain": "skip"} {
		if got := strategy(name); got != want {
			t.Errorf("container %s: %q, want %q", name, got, want)
		}
	}
}
