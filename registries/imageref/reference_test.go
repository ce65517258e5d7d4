package imageref_test

import (
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

func TestReferencesTheRuntimeGrammarRefusesAreRefusedBeforeAnyLookup(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"reg.example/team-b/../team-a/app:1", `".."`},
		{"reg.example/team-b/./app:1", `"."`},
		{"reg.example/team-b/..:1", `".."`},
		{"reg.example/Team/app:1", "lowercase"},
		{"reg.example/team//app:1", "invalid reference format"},
		{"reg.example/team/app:-bad", "invalid reference format"},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := imageref.ParseImage(tc.ref)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
	for _, ok := range []string{"nginx", "library/nginx:1.27", "reg.example:5000/a/b.c/d_e:v1.0", "reg.example/a/b@sha256:" + strings.Repeat("a", 64)} {
		if _, err := imageref.ParseImage(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
