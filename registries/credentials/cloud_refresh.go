package credentials

import (
	"context"
	"sync"
	"time"
)

// CloudRefresher refreshes the cached cloud credentials (aws, gcp, azure)
// in the background before they run out, while they are used. It is a
// controller-runtime Runnable: the manager starts it with the process's
// context, and it runs on every replica (each has its own tokens).
// Without it, each credential is logged in on demand when the last one ran
// out.
type CloudRefresher struct{ tokens *cloudTokens }

// CloudRefresher returns the refresher of the cache's cloud credentials.
// Start it once.
func (c *Cache) CloudRefresher() *CloudRefresher { return &CloudRefresher{tokens: c.cloud} }

// NeedLeaderElection is false: every replica answers admissions with its
// own tokens, so every replica refreshes them, leader or not.
func (r *CloudRefresher) NeedLeaderElection() bool { return false }

// Start refreshes until ctx ends, then waits for the refreshes under way
// (bounded by cloudFetchBound, and ended by ctx) and returns nil.
func (r *CloudRefresher) Start(ctx context.Context) error {
	var running sync.WaitGroup
	defer running.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, ok := r.tokens.startDue(ctx, &running)
		timer.Stop()
		var wake <-chan time.Time
		if ok {
			timer.Reset(time.Until(next))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-r.tokens.stored:
		}
	}
}

// startDue starts the refresh of each token due for one and drops those due
// but unused since they were fetched; it returns when the next is due (ok
// false: none is).
func (c *cloudTokens) startDue(ctx context.Context, running *sync.WaitGroup) (next time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for key, t := range c.tokens {
		switch {
		case t.refreshing:
			continue
		case t.refreshAt.After(now):
			if !ok || t.refreshAt.Before(next) {
				next, ok = t.refreshAt, true
			}
		case !t.used:
			// Not used since it was fetched: the entry went quiet or left
			// the config. Its next use logs in again.
			delete(c.tokens, key)
		default:
			t.refreshing = true
			running.Add(1)
			go func() {
				defer running.Done()
				c.refresh(ctx, key, t)
			}()
		}
	}
	return next, ok
}

// refresh logs in again for the token t of key. On failure the token stays
// in use while it is valid and the refresh is tried again after a backoff
// (doubling, at most cloudRetryMax, within half the time left); once it ran
// out it is dropped, so the next caller logs in itself and sees the error.
func (c *cloudTokens) refresh(ctx context.Context, key tokenKey, t *cloudToken) {
	// Waited for to the end, not only until ctx ends: Start returns once
	// no login it started runs. A login ctx ends stops at once.
	call, _ := c.flight.Start(key, nil, func() (*cloudToken, error) {
		fctx, cancel := context.WithTimeout(ctx, cloudFetchBound)
		defer cancel()
		return c.fetchStore(fctx, key, t.opts)
	})
	<-call.Done()
	_, err := call.Result()
	c.mu.Lock()
	defer c.mu.Unlock()
	t.refreshing = false
	if err == nil {
		return // fetchStore replaced t
	}
	if cur, ok := c.tokens[key]; !ok || cur != t {
		return // invalidated or replaced meanwhile
	}
	left := time.Until(t.validUntil)
	if left <= 0 {
		delete(c.tokens, key)
		return
	}
	t.refreshAt = time.Now().Add(min(t.retry, left/2))
	t.retry = min(2*t.retry, cloudRetryMax)
	select {
	case c.stored <- struct{}{}: // the refresher looks at the new refreshAt
	default:
	}
}
