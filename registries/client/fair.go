package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

type tenantKey struct{}

// WithTenant marks ctx as work for tenant (the admitted object's
// namespace), so that the registry's rate limit is shared fairly among
// tenants.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

func tenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// fairLimiter shares one entry's rate limit among tenants: each token goes
// to the next tenant in turn that has a request waiting, so one tenant's
// burst (a newest-build over many tags) queues behind itself and another
// tenant's single lookup waits for at most one token per busy tenant.
type fairLimiter struct {
	limiter *rate.Limiter

	mu      sync.Mutex
	queues  map[string][]*waiter
	turns   []string // tenants with waiters, next turn first
	pumping bool
}

type waiter struct {
	ready chan struct{}
	gone  bool // its caller gave up
}

func newFairLimiter(l *rate.Limiter) *fairLimiter {
	return &fairLimiter{limiter: l, queues: map[string][]*waiter{}}
}

// Wait blocks until tenant's turn comes and a token is free, or ctx ends.
func (f *fairLimiter) Wait(ctx context.Context, tenant string) error {
	w := &waiter{ready: make(chan struct{})}
	f.mu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		// As rate.Limiter does: refuse at once a wait that cannot end in
		// time, so the caller learns that the rate limit, not the
		// registry, is why.
		if wait := f.expectedWait(len(f.queues[tenant])); time.Until(dl) < wait {
			f.mu.Unlock()
			return pastDeadline(wait)
		}
	}
	if len(f.queues[tenant]) == 0 {
		f.turns = append(f.turns, tenant)
	}
	f.queues[tenant] = append(f.queues[tenant], w)
	if !f.pumping {
		f.pumping = true
		go f.pump()
	}
	f.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		select {
		case <-w.ready:
			return nil // granted meanwhile: use it
		default:
			w.gone = true
			return ctx.Err()
		}
	}
}

// expectedWait estimates, under f.mu, how long a tenant with ahead
// requests already queued waits: its turn comes once per round of the
// tenants waiting.
func (f *fairLimiter) expectedWait(ahead int) time.Duration {
	limit := float64(f.limiter.Limit())
	if limit <= 0 || f.limiter.Limit() == rate.Inf {
		return 0
	}
	tokens := float64((ahead+1)*(len(f.turns)+1)) - f.limiter.Tokens()
	if tokens <= 0 {
		return 0
	}
	return time.Duration(tokens / limit * float64(time.Second))
}

// pump hands out tokens, one tenant after another, while anyone waits; it
// runs only then, so an idle limiter holds no goroutine.
func (f *fairLimiter) pump() {
	for {
		time.Sleep(f.limiter.Reserve().Delay())
		f.mu.Lock()
		for granted := false; !granted && len(f.turns) > 0; {
			t := f.turns[0]
			f.turns = f.turns[1:]
			q := f.queues[t]
			w := q[0]
			if q = q[1:]; len(q) > 0 {
				f.queues[t] = q
				f.turns = append(f.turns, t)
			} else {
				delete(f.queues, t)
			}
			if !w.gone {
				close(w.ready)
				granted = true
			}
		}
		if len(f.turns) == 0 {
			f.pumping = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
	}
}

// pastDeadline is a wait refused because it would end past the deadline. It
// is a context.DeadlineExceeded, so that callers that stop at the deadline
// (newest-build) tell it from a registry's failure.
type pastDeadline time.Duration

func (p pastDeadline) Error() string {
	return fmt.Sprintf("would wait about %s, past the deadline", time.Duration(p).Round(time.Millisecond))
}

func (pastDeadline) Is(target error) bool { return target == context.DeadlineExceeded }
