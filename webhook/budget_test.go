package webhook_test

import (
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// TestTheRegistryRequestBudget counts, at the registry, what admissions
// cost: the numbers docs/performance.md promises.
func TestTheRegistryRequestBudget(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	admitN := func(n int, obj any) {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.admit(t, review(t, admissionv1.Create, "team-a", obj, nil))
			}()
		}
		wg.Wait()
	}
	tests := []struct {
		name                  string
		admit                 func()
		heads, gets, listings int
	}{
		{"digest: fifty concurrent cold admissions of one tag make one HEAD", func() { admitN(50, deployment(nil, host+"/app:1")) }, 1, 0, 0},
		{"digest: the same tag again within cache_ttl makes none", func() { admitN(10, deployment(nil, host+"/app:1")) }, 0, 0, 0},
		{"semver: one tag listing and one HEAD", func() {
			admitN(20, deployment(map[string]string{"image-pin.io/constraint": "~1.4"}, host+"/api"))
		}, 1, 0, 1},
		{"an image that carries a digest costs nothing", func() { admitN(10, deployment(nil, host+"/app:1@"+e.digests["app:1"])) }, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.srv.Reset()
			tc.admit()
			if h, g, l := e.srv.Count("HEAD", "manifest"), e.srv.Count("GET", "manifest"), e.srv.Count("GET", "tags"); h != tc.heads || g != tc.gets || l != tc.listings {
				t.Errorf("manifest HEADs %d, GETs %d, tag listings %d; want %d, %d, %d (all: %v)", h, g, l, tc.heads, tc.gets, tc.listings, e.srv.Received())
			}
		})
	}
}
