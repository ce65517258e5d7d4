package resolver_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func TestOneNamespacesDistinctPoliciesNeverEvictAnothersLastKnownGood(t *testing.T) {
	srv := registrytest.New(t)
	victim := map[string]string{}
	for _, repo := range []string{"victim/a", "victim/b", "victim/c"} {
		victim[repo] = srv.PushImage(t, repo+":1")
	}
	for _, tag := range []string{"1.0.0", "1.1.0"} {
		srv.PushImage(t, "attacker/app:"+tag)
	}
	const bound = 100
	r := resolver.New(resolver.WithAnswersBound(bound), resolver.WithFailureTTL(time.Nanosecond))
	asVictim := client.WithTenant(ctxFor(t, time.Minute), "victim")
	for repo := range victim {
		if _, err := r.Resolve(asVictim, query(setup(t, srv, repo), "1", digestPolicy())); err != nil {
			t.Fatal(err)
		}
	}
	// Each distinct ignore-tags is another query, so another answer: the
	// attacker writes several times more than the cache holds.
	attacker := setup(t, srv, "attacker/app", withLimit(100000))
	asAttacker := client.WithTenant(ctxFor(t, time.Minute), "attacker")
	for i := range 3 * bound {
		p := semverPolicy(t, ">=1.0.0")
		p.IgnoreTags = []string{fmt.Sprintf("x%d", i)}
		if _, err := r.Resolve(asAttacker, query(attacker, "", p)); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	for repo, want := range victim {
		p := digestPolicy()
		p.Fresh = true // past the cache: the registry is down, only the last known good answers
		res, err := r.Resolve(asVictim, query(setup(t, srv, repo), "1", p))
		if err == nil || !res.Stale || res.Digest != want {
			t.Errorf("%s: got %+v, %v; want its last known digest %s with the error", repo, res, err, want)
		}
	}
}
