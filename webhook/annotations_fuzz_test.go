package webhook

import (
	"strings"
	"testing"
)

// FuzzAnnotations: any image-pin.io annotation parses or gives an error
// naming its key; never a panic.
func FuzzAnnotations(f *testing.F) {
	for _, kv := range [][2]string{
		{"image-pin.io/strategy", "semver"}, {"image-pin.io/constraint.app", "~1.4"},
		{"image-pin.io/allow-tags", "regexp:^v"}, {"image-pin.io/ignore-tags", "*-rc*, latest"},
		{"image-pin.io/unknown", "x"}, {"image-pin.io/strategy.", ""},
	} {
		f.Add(kv[0], kv[1])
	}
	f.Fuzz(func(t *testing.T, k, v string) {
		_, err := parseAnnotations(map[string]string{k: v}, map[string]bool{"app": true})
		if err != nil && !strings.Contains(err.Error(), k) {
			t.Fatalf("error %q does not name %q", err, k)
		}
	})
}
