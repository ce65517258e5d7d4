package resolver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/resolver"
)

// A tenant writes allow-tags on its own objects, and every candidate tag of
// every lookup is matched against it. Go's regexps run in time linear in
// the input, but also in the size of the compiled program: a 26-byte
// expression such as (a|aa|[a-z]{1,100}){1,10}$ compiles to about 2,000
// instructions and costs about 0.8 ms a tag, 40 s of CPU for one listing of
// 50,000 tags (the listing cap), repeated for each of an object's lookups.
func TestAllowTagsRegexpsTooCostlyToMatchAreRefused(t *testing.T) {
	var alt strings.Builder
	for i := 0; alt.Len() < 100_000; i++ {
		if i > 0 {
			alt.WriteByte('|')
		}
		fmt.Fprintf(&alt, "[a-z]*%d[a-z]*x", i)
	}
	for _, tc := range []struct{ name, expr string }{
		{"a short expression with nested counted repeats", `(a|aa|[a-z]{1,100}){1,10}$`},
		{"a long alternation, as big as an annotation may be", alt.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolver.ParseAllowTags("regexp:" + tc.expr)
			if err == nil || !strings.Contains(err.Error(), "too complex") {
				t.Fatalf("err = %.200v, want a refusal saying the regexp is too complex", err)
			}
			if len(err.Error()) > 400 {
				t.Errorf("the error is %d bytes long: it must not repeat the whole expression", len(err.Error()))
			}
		})
	}
}

func TestAllowTagsRegexpsUsersWriteAreAccepted(t *testing.T) {
	for _, expr := range []string{
		`^v?[0-9]+\.[0-9]+\.[0-9]+$`,
		`^(main|release)-[0-9a-f]{7,40}$`,
		`^[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9a-f]{40}$`,
		// semver.org's own expression
		`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`,
	} {
		if _, err := resolver.ParseAllowTags("regexp:" + expr); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
}
