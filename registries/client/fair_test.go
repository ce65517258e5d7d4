package client

import (
	"context"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestOneTenantsBurstDoesNotStarveAnothersSingleRequest(t *testing.T) {
	f := newFairLimiter(rate.NewLimiter(20, 1)) // 50ms a token
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ { // team-a queues 100 requests: 5s of tokens
		wg.Add(1)
		go func() { defer wg.Done(); _ = f.Wait(ctx, "team-a") }()
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := f.Wait(ctx, "team-b"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("team-b's one request waited %s behind team-a's burst, want about one token (50ms)", d)
	}
	cancel()
	wg.Wait()
}
