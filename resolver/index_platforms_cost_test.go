package resolver_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// What the metadata cache keeps of an index is its platforms, which a
// tenant writes: an index of thousands of distinct platforms (or one of a
// megabyte) kept per digest would let 20,000 cached digests hold
// gigabytes. Past the bounds the index is an error naming the bound,
// under the entry's platforms as under newest-build.
func TestAnIndexOfTooManyOrTooLongPlatformsIsRefusedNamingTheBound(t *testing.T) {
	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf("linux/arch%d", i)
	}
	for _, tc := range []struct {
		name      string
		platforms []string
		want      string
	}{
		{"300 distinct platforms", many, "more than 256 platforms"},
		{"a platform of 200 bytes", []string{"linux/" + strings.Repeat("a", 194)}, "a platform of 200 bytes, more than 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := registrytest.New(t)
			srv.PushIndex(t, "wide:1", tc.platforms...)
			tgt := setup(t, srv, "wide", withLimit(100000), withPlatforms("linux/amd64"))
			_, err := resolver.New().Resolve(ctxFor(t, 20*time.Second), query(tgt, "1", resolver.Policy{Strategy: resolver.Digest}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}
