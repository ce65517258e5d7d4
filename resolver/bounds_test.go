package resolver_test

import (
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
	img := srv.PushImage(t, "big:0.0.1")
	pushTags(t, srv, "big", img, 150)
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
	img := srv.PushImage(t, "big:0.0.1")
	pushTags(t, srv, "big", img, 90)
	tgt := setup(t, srv, "big", withLimit(20))
	tag, err := resolver.New().Resolve(ctxFor(t, time.Second), query(tgt, "", resolver.Policy{Strategy: resolver.NewestBuild}))
	if err == nil || !strings.Contains(err.Error(), "before the deadline") || !strings.Contains(err.Error(), "allow_tags") {
		t.Fatalf("got %v, %v; want an error saying how many tags were read before the deadline, naming allow_tags", tag, err)
	}
}

// TestNewestBuildOnTenThousandTagsKeepsGoroutinesBounded is the peak the
// issue asks for: 10 concurrent newest-build lookups over 10,000 candidate
// tags each once ran 100,000 goroutines; a fixed pool runs 8 per lookup.
func TestNewestBuildOnTenThousandTagsKeepsGoroutinesBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 10,000 tags")
	}
	srv := registrytest.New(t)
	img := srv.PushImage(t, "big:0.0.1")
	pushTags(t, srv, "big", img, 10000)
	tgt := setup(t, srv, "big", withLimit(100000))
	base := runtime.NumGoroutine()
	var peak atomic.Int64
	var heapPeak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			if i%50 == 0 {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > heapPeak.Load() {
					heapPeak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	r := resolver.New()
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Ten different policies: ten lookups, not one shared.
			p := resolver.Policy{Strategy: resolver.NewestBuild, MaxCandidates: 20000, IgnoreTags: []string{"x" + strings.Repeat("y", i)}}
			if _, err := r.Resolve(ctxFor(t, 120*time.Second), query(tgt, "", p)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	extra := peak.Load() - int64(base)
	t.Logf("peak goroutines: %d above the %d before (10 lookups × 10,000 tags); peak heap in use: %d MiB", extra, base, heapPeak.Load()>>20)
	// 10 lookups × 8 workers, plus the lookups, their callers and, per
	// connection, a client read and write loop and the test server's handler:
	// about 500, whatever the number of tags (10,000 tags once made 100,000).
	if extra > 1000 {
		t.Errorf("peak goroutines %d above baseline, want at most 1000", extra)
	}
}
