package resolver_test

import (
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func TestNewestBuildRefusesPastMaxCandidateTagsNamingAllowTags(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "big:0.0.1")
	pushTags(t, srv, "big", 150)
	tgt := setup(t, srv, "big")
	srv.Reset()
	_, err := resolver.New().Resolve(ctxFor(t, 10*time.Second), query(tgt, "", resolver.Policy{Strategy: resolver.NewestBuild}))
	if err == nil || !strings.Contains(err.Error(), "max_candidate_tags (100)") || !strings.Contains(err.Error(), "allow_tags") {
		t.Fatalf("err = %v, want a refusal naming max_candidate_tags and allow_tags", err)
	}
	if n := srv.Count("HEAD", "manifest") + srv.Count("GET", "manifest"); n != 0 {
		t.Errorf("%d manifest requests before refusing, want none", n)
	}
}

// Found end to end (test/envtest/tenants_bounds_test.go): a lookup that ran
// out of time pinned the newest of the tags it had read so far.
func TestNewestBuildThatRunsOutOfTimeFailsRatherThanPinningAnOlderTag(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "big:0.0.1")
	pushTags(t, srv, "big", 90)
	tgt := setup(t, srv, "big", withLimit(20))
	tag, err := resolver.New().Resolve(ctxFor(t, time.Second), query(tgt, "", resolver.Policy{Strategy: resolver.NewestBuild}))
	if err == nil || !strings.Contains(err.Error(), "before the deadline") || !strings.Contains(err.Error(), "allow_tags") {
		t.Fatalf("got %v, %v; want an error saying how many tags were read before the deadline, naming allow_tags", tag, err)
	}
}

// TestNewestBuildOnManyTagsKeepsGoroutinesBounded is the peak the issue
// asks for: 10 concurrent newest-build lookups over 10,000 candidate tags
// each once ran 100,000 goroutines (one per tag); a fixed pool runs 8 per
// lookup. The registry holds every HEAD until all the lookups' workers wait
// on one, so the goroutines are counted at the peak, not sampled near it:
// 300 tags a lookup (3,000 goroutines one per tag) tell the two apart as
// well as 10,000, in seconds.
func TestNewestBuildOnManyTagsKeepsGoroutinesBounded(t *testing.T) {
	const lookups, tags, workers = 10, 300, 8
	srv := registrytest.New(t)
	srv.PushImage(t, "big:0.0.1")
	pushTags(t, srv, "big", tags)
	tgt := setup(t, srv, "big", withLimit(100000))
	var inFlight, peak atomic.Int64
	gate := make(chan struct{})
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-gate
		}
		return false
	})
	base := runtime.NumGoroutine()
	r := resolver.New()
	var wg sync.WaitGroup
	for i := range lookups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Ten different policies: ten lookups, not one shared.
			p := resolver.Policy{Strategy: resolver.NewestBuild, MaxCandidates: 20000, IgnoreTags: []string{"x" + strings.Repeat("y", i)}}
			if _, err := r.Resolve(ctxFor(t, 10*time.Minute), query(tgt, "", p)); err != nil {
				t.Error(err)
			}
		}()
	}
	for inFlight.Load() < lookups*workers {
		runtime.Gosched()
	}
	extra := runtime.NumGoroutine() - base
	close(gate)
	wg.Wait()
	t.Logf("goroutines at the peak: %d above the %d before (%d lookups × %d tags); at most %d HEADs at once", extra, base, lookups, tags, peak.Load())
	// 10 lookups × 8 workers, plus the lookups, their callers and, per
	// connection, a client read and write loop and the test server's handler:
	// about 500, whatever the number of tags (one per tag would be 3,000).
	if extra > 1000 {
		t.Errorf("%d goroutines above baseline at the peak, want at most 1000", extra)
	}
	if p := peak.Load(); p > lookups*workers {
		t.Errorf("%d manifest HEADs at once, want at most %d (%d workers per lookup)", p, lookups*workers, workers)
	}
}
