package resolver_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// max_candidate_tags bounds newest-build's candidates, but each candidate
// that is an index cost a manifest GET and a config blob GET per child
// image: a tenant that can push to a repository an entry serves (its own,
// usually) could make one candidate cost thousands of requests on the
// shared registry's rate limit by pushing an index of thousands of images.
func TestNewestBuildReadsABoundedNumberOfAnIndexsImages(t *testing.T) {
	srv := registrytest.New(t)
	platforms := make([]string, 200)
	for i := range platforms {
		platforms[i] = fmt.Sprintf("linux/arch%d", i)
	}
	srv.PushIndex(t, "wide:1", platforms...)
	tgt := setup(t, srv, "wide", withLimit(100000))
	srv.Reset()
	_, err := resolver.New().Resolve(ctxFor(t, 20*time.Second), query(tgt, "", resolver.Policy{Strategy: resolver.NewestBuild}))
	if n := srv.Total(); n > 100 {
		t.Fatalf("one candidate (an index of 200 images) cost %d registry requests, want at most 100 (err = %v)", n, err)
	}
	if err == nil || !strings.Contains(err.Error(), "images") {
		t.Fatalf("err = %v, want an error saying the index lists too many images", err)
	}
}
