package resolver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// cachesBound is the bound the fair-caches tests give every cache: the
// attacker writes several times more distinct keys than it.
const cachesBound = 20

func TestOneNamespacesDistinctImagesNeverEvictAnothersTagsDescriptorsOrMetadata(t *testing.T) {
	srv := registrytest.New(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, tag := range []string{"a", "b", "c"} {
		srv.PushImageCreated(t, "victim/app:"+tag, base.Add(time.Duration(i)*time.Hour))
	}
	for i := range 5 * cachesBound {
		srv.PushImage(t, fmt.Sprintf("attacker/r%d:1", i))
	}
	r := resolver.New(resolver.WithCachesBound(cachesBound))
	victim := setup(t, srv, "victim/app", withLimit(100000))
	asVictim := client.WithTenant(ctxFor(t, time.Minute), "victim")
	newest := func(ignore string) resolver.Policy {
		return resolver.Policy{Strategy: resolver.NewestBuild, CacheTTL: 5 * time.Minute, IgnoreTags: []string{ignore}}
	}
	if res, err := r.Resolve(asVictim, query(victim, "", newest("x"))); err != nil || res.Tag != "c" {
		t.Fatalf("victim: got %+v, %v; want tag c", res, err)
	}
	// Each attacker repository is another tag list, descriptor and digest.
	asAttacker := client.WithTenant(ctxFor(t, time.Minute), "attacker")
	for i := range 5 * cachesBound {
		tgt := setup(t, srv, fmt.Sprintf("attacker/r%d", i), withLimit(100000))
		if _, err := r.Resolve(asAttacker, query(tgt, "", newest("x"))); err != nil {
			t.Fatal(err)
		}
	}
	srv.Reset()
	// Another policy of the victim's: a new answer, from the victim's
	// cached tags, descriptors and build dates; only the chosen tag's HEAD.
	if res, err := r.Resolve(asVictim, query(victim, "", newest("y"))); err != nil || res.Tag != "c" {
		t.Fatalf("victim again: got %+v, %v; want tag c", res, err)
	}
	if n := srv.Count("GET", "tags"); n != 0 {
		t.Errorf("the victim's tag list was listed again (%d requests): the attacker evicted it", n)
	}
	if n := srv.Count("GET", "blob") + srv.Count("GET", "manifest"); n != 0 {
		t.Errorf("the victim's build dates were read again (%d requests): the attacker evicted them", n)
	}
	if n := srv.Count("HEAD", "manifest"); n != 1 {
		t.Errorf("%d manifest HEADs, want 1 (the chosen tag's digest): the attacker evicted the victim's descriptors", n)
	}
}

func TestOneNamespacesDistinctPoliciesNeverEvictAnothersRecentFailures(t *testing.T) {
	srv := registrytest.New(t)
	r := resolver.New(resolver.WithCachesBound(cachesBound), resolver.WithFailureTTL(time.Hour))
	asVictim := client.WithTenant(ctxFor(t, time.Minute), "victim")
	victim := query(setup(t, srv, "victim/gone"), "", semverPolicy(t, ">=1"))
	if _, err := r.Resolve(asVictim, victim); err == nil {
		t.Fatal("a repository that does not exist resolved")
	}
	asAttacker := client.WithTenant(ctxFor(t, time.Minute), "attacker")
	attacker := setup(t, srv, "attacker/gone", withLimit(100000))
	for i := range 5 * cachesBound {
		p := semverPolicy(t, ">=1")
		p.IgnoreTags = []string{fmt.Sprintf("x%d", i)}
		if _, err := r.Resolve(asAttacker, query(attacker, "", p)); err == nil {
			t.Fatal("a repository that does not exist resolved")
		}
	}
	srv.Reset()
	if _, err := r.Resolve(asVictim, victim); err == nil {
		t.Fatal("the victim's failed lookup resolved")
	}
	if n := srv.Total(); n != 0 {
		t.Errorf("the victim's recent failure was asked again (%d requests): the attacker evicted it", n)
	}
}
