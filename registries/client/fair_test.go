package client

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// stopped waits, on synctest's clock, until f's pump has dropped the
// requests given up and stopped: a bubble ends only with its goroutines.
func stopped(f *fairLimiter) {
	for {
		synctest.Wait()
		f.mu.Lock()
		pumping := f.pumping
		f.mu.Unlock()
		if !pumping {
			return
		}
		time.Sleep(time.Second) // the bubble's clock: the pump's next token
	}
}

// Counted in grants, on synctest's clock: of team-a's queued burst, at
// most one request (its turn of the round) goes before team-b's one.
func TestOneTenantsBurstDoesNotStarveAnothersSingleRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFairLimiter(rate.NewLimiter(20, 1)) // 50ms a token
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		var granted atomic.Int64
		for range 100 { // team-a queues 100 requests: 5s of tokens
			wg.Go(func() {
				if f.Wait(ctx, "team-a") == nil {
					granted.Add(1)
				}
			})
		}
		synctest.Wait() // every one of them queued
		before := granted.Load()
		if err := f.Wait(ctx, "team-b"); err != nil {
			t.Fatal(err)
		}
		if ahead := granted.Load() - before; ahead > 1 {
			t.Errorf("team-b's one request waited for %d of team-a's burst, want at most one (a turn each)", ahead)
		}
		cancel()
		wg.Wait()
		stopped(f)
	})
}

// Found by the tenant review (issue 20): a shared lookup ran in its
// starter's queue, so a namespace that joined it waited behind the
// starter's burst (3.49s joined, 0.40s alone).
func TestALookupJoinedByAnotherTenantLeavesTheStartersQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFairLimiter(rate.NewLimiter(50, 1)) // 20ms a token
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		var granted atomic.Int64
		for range 100 { // team-a's burst: 2s of tokens
			wg.Go(func() {
				if f.Wait(ctx, "team-a") == nil {
					granted.Add(1)
				}
			})
		}
		synctest.Wait() // every one of them queued
		// team-a's shared lookup queues its request behind its own burst.
		sh := NewShare("team-a")
		done := make(chan int64, 1)
		go func() {
			if err := f.Wait(WithShare(ctx, sh), "team-a"); err != nil {
				t.Error(err)
			}
			done <- granted.Load()
		}()
		synctest.Wait() // queued too
		sh.Join("team-b")
		before := granted.Load()
		after := <-done
		// One turn per tenant waiting: team-a's and the neutral share's.
		if ahead := after - before; ahead > 3 {
			t.Errorf("the joined lookup's request waited for %d of team-a's requests after team-b joined, want at most 3", ahead)
		}
		cancel()
		wg.Wait()
		stopped(f)
		if got := sh.Tenants(); len(got) != 2 {
			t.Errorf("tenants of the share = %q", got)
		}
	})
}

// The leader's refreshes ahead of use (issue 21) run as BackgroundTenant:
// every admission queued meanwhile gets its token first, and the
// background gets the tokens nobody else wants.
func TestBackgroundRequestsGetOnlyTheTokensAdmissionsDoNotWant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFairLimiter(rate.NewLimiter(10, 1)) // 100ms a token
		ctx := context.Background()
		var mu sync.Mutex
		var order []string
		var wg sync.WaitGroup
		wait := func(label, tenant string, ctx context.Context) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.Wait(ctx, tenant); err != nil {
					t.Error(err)
				}
				mu.Lock()
				order = append(order, label)
				mu.Unlock()
			}()
		}
		for range 5 {
			wait("background", BackgroundTenant, ctx)
		}
		synctest.Wait() // the first background request took the free token
		for _, ns := range []string{"team-a", "team-b", "team-a", "team-c"} {
			wait(ns, ns, ctx)
		}
		// A shared lookup started in the background that an admission
		// joins moves to the admissions' side.
		sh := NewShare(BackgroundTenant)
		wait("joined", BackgroundTenant, WithShare(ctx, sh))
		synctest.Wait()
		sh.Join("team-d")
		wg.Wait()
		fg := 0
		for i, who := range order {
			if who != "background" {
				fg++
				continue
			}
			if i > 0 && fg < 5 { // four admissions and the joined lookup
				t.Fatalf("a background request got token %d while admissions were waiting: %q", i+1, order)
			}
		}
		if len(order) != 10 || order[0] != "background" {
			t.Fatalf("grants %q, want the first (free) token in the background, then the five admissions, then the background", order)
		}
	})
}

func TestABackgroundRequestThatGivesUpLeavesTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFairLimiter(rate.NewLimiter(10, 1))
		if err := f.Wait(context.Background(), BackgroundTenant); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := f.Wait(ctx, BackgroundTenant); err == nil {
			t.Fatal("a background wait past its deadline was granted")
		}
		// The token it would have had goes to the next one.
		if err := f.Wait(context.Background(), "team-a"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.pumping || len(f.background) != 0 {
			t.Fatalf("the pump still runs (%v) with %d background waiters", f.pumping, len(f.background))
		}
	})
}
