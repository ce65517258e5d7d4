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

// TenantOf returns the tenant ctx was marked with by WithTenant, or "".
func TenantOf(ctx context.Context) string { return tenantOf(ctx) }

// neutralTenant is the share of the rate limit that lookups waited on by
// more than one tenant are charged to. It is no namespace's name (a NUL
// cannot be in one), so no tenant can queue in it by naming it.
const neutralTenant = "\x00shared"

// BackgroundTenant is the tenant of work no admission waits for (the
// leader's refresh ahead of use): its requests get only the tokens that no
// admission wants, so a refresh never delays an admission by more than the
// one token it may already hold. Like neutralTenant it is no namespace's
// name. A shared lookup started by it (NewShare(BackgroundTenant)) moves to
// the neutral share, at admissions' priority, once an admission joins it.
const BackgroundTenant = "\x00background"

// Share is one lookup run once for every tenant waiting on it (the
// resolver's shared lookups). While one tenant waits on it, its requests
// queue as that tenant's; once another tenant joins, they queue in a
// neutral share of their own, so that a tenant joining a lookup does not
// wait behind the starter's burst, and the starter gains at most one more
// turn per round, as any other tenant would.
type Share struct {
	mu      sync.Mutex
	tenants []string
	joined  chan struct{} // closed when a second tenant joins
}

// NewShare starts a share waited on by tenant.
func NewShare(tenant string) *Share {
	return &Share{tenants: []string{tenant}, joined: make(chan struct{})}
}

// Join adds tenant to those waiting on s.
func (s *Share) Join(tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tenants {
		if t == tenant {
			return
		}
	}
	s.tenants = append(s.tenants, tenant)
	if len(s.tenants) == 2 {
		close(s.joined)
	}
}

// Tenants returns the tenants that waited on s.
func (s *Share) Tenants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tenants...)
}

// charge returns whom a request of s is charged to now and, while that is
// its one tenant, a channel closed when that changes.
func (s *Share) charge() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tenants) == 1 {
		return s.tenants[0], s.joined
	}
	return neutralTenant, nil
}

// ChargeOf returns whom ctx's work is charged to now, as the registry's
// rate limit charges it: a shared lookup's (WithShare) as its Share says,
// otherwise ctx's tenant. While a Share charges its one tenant, joined is
// closed once another tenant joins (its work is then the neutral share's);
// it is nil when that cannot change. The resolver's read budget shares its
// bytes the same way.
func ChargeOf(ctx context.Context) (tenant string, joined <-chan struct{}) {
	if sh := shareOf(ctx); sh != nil {
		return sh.charge()
	}
	return tenantOf(ctx), nil
}

type shareKey struct{}

// WithShare marks ctx as the work of s: its registry requests are charged
// as s says (see Share) rather than to ctx's tenant.
func WithShare(ctx context.Context, s *Share) context.Context {
	return context.WithValue(ctx, shareKey{}, s)
}

func shareOf(ctx context.Context) *Share {
	s, _ := ctx.Value(shareKey{}).(*Share)
	return s
}

// fairLimiter shares one entry's rate limit among tenants: each token goes
// to the next tenant in turn that has a request waiting, so one tenant's
// burst (a newest-build over many tags) queues behind itself and another
// tenant's single lookup waits for at most one token per busy tenant.
type fairLimiter struct {
	limiter *rate.Limiter

	mu     sync.Mutex
	queues map[string][]*waiter
	turns  []string // tenants with waiters, next turn first
	// background waits for the tokens no tenant in turns wants.
	background []*waiter
	pumping    bool
}

type waiter struct {
	ready chan struct{}
	gone  bool // its caller gave up
}

func newFairLimiter(l *rate.Limiter) *fairLimiter {
	return &fairLimiter{limiter: l, queues: map[string][]*waiter{}}
}

// Wait blocks until tenant's turn comes and a token is free, or ctx ends.
// A request of a shared lookup (WithShare) is charged as its Share says,
// and moves to the neutral share while it waits if another tenant joins.
func (f *fairLimiter) Wait(ctx context.Context, tenant string) error {
	sh := shareOf(ctx)
	for {
		var moved <-chan struct{}
		if sh != nil {
			tenant, moved = sh.charge()
		}
		w, err := f.enqueue(ctx, tenant)
		if err != nil {
			return err
		}
		select {
		case <-w.ready:
			return nil
		case <-ctx.Done():
			if f.leave(w) {
				return nil // granted meanwhile: use it
			}
			return ctx.Err()
		case <-moved:
			if f.leave(w) {
				return nil
			}
		}
	}
}

// enqueue queues w for tenant, or refuses at once a wait that cannot end
// before ctx's deadline, as rate.Limiter does, so that the caller learns
// that the rate limit, not the registry, is why.
func (f *fairLimiter) enqueue(ctx context.Context, tenant string) (*waiter, error) {
	w := &waiter{ready: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	if tenant == BackgroundTenant {
		// No estimate: its wait depends on admissions yet to come; its
		// deadline ends it.
		f.background = append(f.background, w)
		f.startPump()
		return w, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		if wait := f.expectedWait(len(f.queues[tenant])); time.Until(dl) < wait {
			return nil, pastDeadline(wait)
		}
	}
	if len(f.queues[tenant]) == 0 {
		f.turns = append(f.turns, tenant)
	}
	f.queues[tenant] = append(f.queues[tenant], w)
	f.startPump()
	return w, nil
}

// startPump starts the pump, under f.mu, unless it runs.
func (f *fairLimiter) startPump() {
	if !f.pumping {
		f.pumping = true
		go f.pump()
	}
}

// leave gives up w's place, unless its token was granted meanwhile, which
// it reports.
func (f *fairLimiter) leave(w *waiter) (granted bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-w.ready:
		return true
	default:
		w.gone = true
		return false
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
// runs only then, so an idle limiter holds no goroutine. A token goes to
// the background only when no tenant waits for it once it is due.
func (f *fairLimiter) pump() {
	for {
		if f.idle() {
			return
		}
		time.Sleep(f.limiter.Reserve().Delay())
		f.mu.Lock()
		granted := false
		for !granted && len(f.turns) > 0 {
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
		for !granted && len(f.background) > 0 {
			w := f.background[0]
			f.background[0] = nil
			f.background = f.background[1:]
			if !w.gone {
				close(w.ready)
				granted = true
			}
		}
		if len(f.turns) == 0 && len(f.background) == 0 {
			f.pumping = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
	}
}

// idle drops the background waiters that gave up (a refresh an admission
// joined moves to the admissions' side) and, when nobody waits, stops the
// pump, rather than spend a token on nobody.
func (f *fairLimiter) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.background) > 0 && f.background[0].gone {
		f.background[0] = nil
		f.background = f.background[1:]
	}
	if len(f.turns) == 0 && len(f.background) == 0 {
		f.pumping = false
		return true
	}
	return false
}

// pastDeadline is a wait refused because it would end past the deadline. It
// is a context.DeadlineExceeded, so that callers that stop at the deadline
// (newest-build) tell it from a registry's failure.
type pastDeadline time.Duration

func (p pastDeadline) Error() string {
	return fmt.Sprintf("would wait about %s, past the deadline", time.Duration(p).Round(time.Millisecond))
}

func (pastDeadline) Is(target error) bool { return target == context.DeadlineExceeded }
