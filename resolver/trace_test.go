package resolver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func TestATraceOnTheContextSeesTheTagsConsideredAndTheChoice(t *testing.T) {
	srv := registrytest.New(t)
	for _, tag := range []string{"1.4.0", "1.4.7", "1.5.0", "1.4.9-rc1"} {
		srv.PushImage(t, "app:"+tag)
	}
	tgt := setup(t, srv, "app")
	p := semverPolicy(t, "~1.4")
	p.IgnoreTags = []string{"*-rc*"}
	var got []resolver.LookupTrace
	ctx := resolver.WithTrace(ctxFor(t, 10*time.Second), &resolver.Trace{Lookup: func(lt resolver.LookupTrace) { got = append(got, lt) }})
	r := resolver.New()
	if _, err := r.Resolve(ctx, query(tgt, "", p)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, query(tgt, "", p)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("traced %d lookups, want 1 (the second answer comes from the cache)", len(got))
	}
	lt := got[0]
	if lt.Strategy != "semver" || lt.Constraint != "~1.4" || lt.Listed != 4 || strings.Join(lt.Candidates, ",") != "1.4.0,1.4.7,1.5.0" || lt.Tag != "1.4.7" {
		t.Errorf("trace = %+v", lt)
	}
}
